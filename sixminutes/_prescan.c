/* The compiled pre-scan of a CDR: validate the JSON, keep only the members the Call needs.
 *
 * A FreeSWITCH CDR is 8-12 KB, of which the engine reads some 23 variables. msgspec
 * matches every one of the ~180 variable names against the 23 fields it decodes, which
 * costs more than reading the bytes. This scanner validates the whole document (strict
 * RFC 8259 grammar, ASCII only) and copies, verbatim, the wanted members into a small
 * JSON object:
 *
 *     {"variables":{<wanted variables>},<wanted top-level members>}
 *
 * which call.py hands to the same msgspec decoder as before. Values are copied as they
 * are, so their conversion (numeric strings, escapes, wrong types) stays msgspec's and
 * the result equals decoding the whole document. Whenever the scanner is not sure of
 * that (non-ASCII bytes, an escaped key, a \u escape of a surrogate, nesting deeper than
 * MAX_DEPTH, not JSON at all) it returns None and call.py decodes the document the slow
 * way, which gives the exact error. tests/test_prescan.py checks both paths agree.
 */
#include "_jsonscan.h"

#define MAX_NAMES 64
#define MAX_NAME_LEN 64

#define BUCKETS 256
#define PER_BUCKET 4

typedef struct {
    int count;
    Py_ssize_t len[MAX_NAMES];
    char name[MAX_NAMES][MAX_NAME_LEN];
    /* names by hash of (length, first and last byte): most keys are turned down by one look */
    signed char bucket[BUCKETS][PER_BUCKET];
} Names;

static Names top_names;       /* top-level members kept, besides "variables" */
static Names variable_names;  /* members of "variables" kept */
static int configured = 0;

static int emit(Scan *s, const unsigned char *from, Py_ssize_t n) {
    if (s->out_end - s->out < n)
        return -1;  /* cannot happen (the output is a subset of the input); never overrun */
    memcpy(s->out, from, n);
    s->out += n;
    return 0;
}

static int emit_byte(Scan *s, unsigned char c) {
    return emit(s, &c, 1);
}

static unsigned name_hash(const unsigned char *key, Py_ssize_t n) {
    return n ? ((unsigned)n * 31u + key[0] * 7u + key[n - 1]) % BUCKETS : 0;
}

static int wanted(const Names *names, const unsigned char *key, Py_ssize_t n) {
    const signed char *bucket = names->bucket[name_hash(key, n)];
    for (int j = 0; j < PER_BUCKET && bucket[j] >= 0; j++) {
        int i = bucket[j];
        if (names->len[i] == n && memcmp(names->name[i], key, n) == 0)
            return 1;
    }
    return 0;
}

/* The members of an object, those named in `names` copied as "key":value, comma-separated.
 * s->p is on the opening brace. *copied counts the members written so far (for commas). */
static int copy_members(Scan *s, const Names *names, int depth, int *copied,
                        int top_level, int *variables_seen) {
    const unsigned char *key, *value;
    Py_ssize_t key_len;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    for (;;) {
        if (s->p >= s->end || *s->p != '"')
            return -1;
        if (top_level && s->end - s->p > 11 && memcmp(s->p, "\"variables\"", 11) == 0) {
            /* "variables": its wanted members, in an object of their own */
            int inner = 0;
            s->p += 11;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return -1;
            s->p++;
            skip_ws(s);
            if (*copied && emit_byte(s, ',') < 0)
                return -1;
            (*copied)++;
            *variables_seen = 1;
            if (s->p < s->end && *s->p == '{') {
                if (emit(s, (const unsigned char *)"\"variables\":{", 13) < 0
                    || copy_members(s, &variable_names, depth + 1, &inner, 0, NULL) < 0
                    || emit_byte(s, '}') < 0)
                    return -1;
            } else {
                value = s->p;
                if (scan_value(s, depth + 1) < 0
                    || emit(s, (const unsigned char *)"\"variables\":", 12) < 0
                    || emit(s, value, s->p - value) < 0)
                    return -1;
            }
        } else {
            if (scan_member(s, depth + 1, &key, &key_len, &value) < 0)
                return -1;
            if (wanted(names, key, key_len)) {
                if ((*copied && emit_byte(s, ',') < 0)
                    || emit(s, key - 1, key_len + 2) < 0
                    || emit_byte(s, ':') < 0
                    || emit(s, value, s->p - value) < 0)
                    return -1;
                (*copied)++;
            }
        }
        int more = next_item(s, '}');
        if (more <= 0)
            return more;
    }
}

static PyObject *prescan_members(PyObject *module, PyObject *arg) {
    char *data;
    Py_ssize_t size;
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "_prescan.configure() was not called");
        return NULL;
    }
    if (PyBytes_AsStringAndSize(arg, &data, &size) < 0)
        return NULL;
    PyObject *result = PyBytes_FromStringAndSize(NULL, size + 16);
    if (result == NULL)
        return NULL;
    Scan s;
    s.p = (const unsigned char *)data;
    s.end = s.p + size;
    s.out = (unsigned char *)PyBytes_AS_STRING(result);
    s.out_end = s.out + size + 16;
    unsigned char *out_start = s.out;
    int copied = 0, variables_seen = 0, ok;
    skip_ws(&s);
    ok = s.p < s.end && *s.p == '{' && emit_byte(&s, '{') == 0
         && copy_members(&s, &top_names, 0, &copied, 1, &variables_seen) == 0
         && emit_byte(&s, '}') == 0;
    if (ok) {
        skip_ws(&s);
        ok = s.p == s.end;
    }
    if (!ok) {
        Py_DECREF(result);
        Py_RETURN_NONE;
    }
    if (_PyBytes_Resize(&result, s.out - out_start) < 0)
        return NULL;
    return result;
}

/* The next "end_epoch" key (the quoted name, blanks, a colon) at or after p: where its value
 * starts, or NULL when there is none. A match is always a key: inside a JSON string, the
 * quotes around the name would be escaped. */
static const char END_EPOCH[] = "\"end_epoch\"";
#define END_EPOCH_SIZE (sizeof END_EPOCH - 1)

#if defined(__SSE2__)
#include <emmintrin.h>
/* Where the quoted name "end_epoch" is at or after p, or NULL: 16 places at a time, those
 * with its 'd' and its 'h' where they fall (about one place in 5,000 in a CDR) compared
 * whole. Three times as fast as glibc's memmem here, and each replay process reads every
 * byte of its inputs through it. */
static const char *find_end_epoch(const char *p, const char *end) {
    if (end - p < (Py_ssize_t)END_EPOCH_SIZE)
        return NULL;
    const char *last = end - END_EPOCH_SIZE;  /* the last place it can start */
    const __m128i d = _mm_set1_epi8('d'), h = _mm_set1_epi8('h');
    for (; p + 15 <= last; p += 16) {  /* (reads up to p + 24, within end) */
        __m128i at_d = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + 3)), d);
        __m128i at_h = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + 9)), h);
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_and_si128(at_d, at_h));
        while (mask) {
            int i = __builtin_ctz(mask);
            if (memcmp(p + i, END_EPOCH, END_EPOCH_SIZE) == 0)
                return p + i;
            mask &= mask - 1;
        }
    }
    for (; p <= last; p++)
        if (p[3] == 'd' && p[9] == 'h' && memcmp(p, END_EPOCH, END_EPOCH_SIZE) == 0)
            return p;
    return NULL;
}
#else
static const char *find_end_epoch(const char *p, const char *end) {
    return memmem(p, end - p, END_EPOCH, END_EPOCH_SIZE);
}
#endif

static const char *next_end_epoch(const char *p, const char *end) {
    while ((p = find_end_epoch(p, end)) != NULL) {
        const char *q = p + END_EPOCH_SIZE;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
            q++;
        if (q < end && *q == ':') {
            q++;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
                q++;
            return q;
        }
        p++;
    }
    return NULL;
}

/* The value of the one "end_epoch" key, when it is plain: 1 to 12 digits without a leading
 * zero, quoted or not, and the key appears once. Else -1: the caller decodes the document,
 * for whatever else (a sign, blanks, a fraction, a repeated or escaped key) means to msgspec. */
static long long plain_end_epoch(const char *data, const char *end) {
    const char *q = next_end_epoch(data, end);
    long long value = 0;
    int digits = 0, quoted;
    if (q == NULL)
        return -1;
    quoted = q < end && *q == '"';
    q += quoted;
    if (q < end && *q == '0')
        return -1;
    while (q < end && digits < 13 && *q >= '0' && *q <= '9') {
        value = value * 10 + (*q++ - '0');
        digits++;
    }
    if (digits == 0 || digits > 12)
        return -1;
    if (quoted ? !(q < end && *q == '"')
               : !(q == end || *q == ',' || *q == '}' || *q == ' ' || *q == '\t' || *q == '\n'
                   || *q == '\r'))
        return -1;
    if (next_end_epoch(q, end) != NULL)
        return -1;  /* repeated (in another object, say): msgspec decides */
    return value;
}

static PyObject *prescan_end_epoch(PyObject *module, PyObject *arg) {
    char *data;
    Py_ssize_t size;
    if (PyBytes_AsStringAndSize(arg, &data, &size) < 0)
        return NULL;
    return PyLong_FromLongLong(plain_end_epoch(data, data + size));
}

/* The complete lines of a buffer of JSON Lines, for one of the processes of a parallel
 * replay: a line holding one plain document (as files.py's _line_docs tells them: it starts
 * with {" and ends with }, and is no {"last_seq"... or {"pending"...) becomes the document
 * (bytes, without its newline) when its window falls to process `index` of `jobs`, `passed`
 * (None unless given) when it falls to another (never copied); any other line (a plain
 * document whose end time only the decoder can read, a blank line, an array...) a 1-tuple of
 * the line with its newline. Returns (items, bytes used, how many 1-tuples, the bytes of the
 * documents copied): a line the buffer cuts short is left for the next call.
 *
 * With `record` (a bytearray), each line taken also appends three int64 to it: where it
 * starts and ends (past its newline) in data, and its plain end time (-1: a (line,) item), the
 * index another process reads the lines of a segment by (sources/segments.py). With `stop`
 * >= 0, no line starting at or after that offset is taken. */
static PyObject *prescan_split_lines(PyObject *module, PyObject *args) {
    Py_buffer view;
    int jobs, index;
    long long window;
    PyObject *passed = Py_None, *record = Py_None;
    Py_ssize_t stop = -1;
    if (!PyArg_ParseTuple(args, "y*iiL|OOn", &view, &jobs, &index, &window, &passed, &record,
                          &stop))
        return NULL;
    if (jobs < 1 || window < 1 || (record != Py_None && !PyByteArray_Check(record))) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "jobs and window must be positive, record a bytearray");
        return NULL;
    }
    const char *data = view.buf, *end = data + view.len, *p = data, *nl;
    const char *last = stop >= 0 && stop < view.len ? data + stop : end;
    Py_ssize_t odd = 0, copied = 0;
    PyObject *items = PyList_New(0);
    while (items != NULL && p < last && (nl = memchr(p, '\n', end - p)) != NULL) {
        PyObject *item;
        long long epoch = -1;
        int plain = nl - p >= 3 && p[0] == '{' && p[1] == '"' && nl[-1] == '}' && p[2] != 'l'
                    && p[2] != 'p';
        if (plain)
            epoch = plain_end_epoch(p, nl);
        if (record != Py_None) {
            int64_t entry[3] = {p - data, nl + 1 - data, epoch};
            Py_ssize_t size = PyByteArray_GET_SIZE(record);
            if (PyByteArray_Resize(record, size + (Py_ssize_t)sizeof entry) < 0) {
                Py_CLEAR(items);
                break;
            }
            memcpy(PyByteArray_AS_STRING(record) + size, entry, sizeof entry);
        }
        if (epoch < 0) {
            PyObject *line = PyBytes_FromStringAndSize(p, nl - p + 1);
            item = line ? PyTuple_Pack(1, line) : NULL;
            Py_XDECREF(line);
            odd++;
        } else if ((epoch / window) % jobs != index) {
            item = passed;
            Py_INCREF(item);
        } else {
            item = PyBytes_FromStringAndSize(p, nl - p);
            copied += nl - p;
        }
        if (item == NULL || PyList_Append(items, item) < 0)
            Py_CLEAR(items);
        Py_XDECREF(item);
        p = nl + 1;
    }
    Py_ssize_t used = p - data;
    PyBuffer_Release(&view);
    if (items == NULL)
        return NULL;
    return Py_BuildValue("(Nnnn)", items, used, odd, copied);
}

/* How many c bytes from p to end, counting no further than past stop (memchr: fast). */
static Py_ssize_t count_byte(const unsigned char *p, const unsigned char *end, int c,
                             Py_ssize_t stop) {
    Py_ssize_t n = 0;
    while (n <= stop && p < end && (p = memchr(p, c, end - p)) != NULL) {
        n++;
        p++;
    }
    return n;
}

/* Whether brackets outside strings nest deeper than limit; any bytes (not checked as JSON).
 * A string runs to the first quote not escaped by an odd run of backslashes, or to the end:
 * what call.py's _STRING pattern takes, so the two agree (tests/test_prescan.py). */
static PyObject *prescan_deeper_than(PyObject *module, PyObject *args) {
    Py_buffer view;
    Py_ssize_t limit, depth = 0;
    int deeper = 0;
    if (!PyArg_ParseTuple(args, "y*n", &view, &limit))
        return NULL;
    const unsigned char *p = view.buf, *end = p + view.len;
    if (count_byte(p, end, '[', limit) + count_byte(p, end, '{', limit) <= limit)
        p = end;  /* no deeper than its brackets: a CDR has a few dozen */
    while (p < end) {
        unsigned char c = *p++;
        if (c == '"') {
            for (;;) {
                const unsigned char *q = memchr(p, '"', end - p), *b;
                if (q == NULL) {
                    p = end;
                    break;
                }
                for (b = q; b > p && b[-1] == '\\'; b--)
                    ;
                p = q + 1;
                if (((q - b) & 1) == 0)
                    break;
            }
        } else if (c == '[' || c == '{') {
            if (++depth > limit) {
                deeper = 1;
                break;
            }
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(deeper);
}

static int set_names(Names *names, PyObject *seq) {
    PyObject *fast = PySequence_Fast(seq, "names must be a sequence of str");
    if (fast == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > MAX_NAMES) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "too many names");
        return -1;
    }
    memset(names->bucket, -1, sizeof names->bucket);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        const char *text = PyUnicode_AsUTF8AndSize(PySequence_Fast_GET_ITEM(fast, i), &len);
        if (text == NULL || len >= MAX_NAME_LEN) {
            Py_DECREF(fast);
            if (text != NULL)
                PyErr_SetString(PyExc_ValueError, "name too long");
            return -1;
        }
        memcpy(names->name[i], text, len);
        names->len[i] = len;
        signed char *bucket = names->bucket[name_hash((const unsigned char *)text, len)];
        int j = 0;
        while (j < PER_BUCKET && bucket[j] >= 0)
            j++;
        if (j == PER_BUCKET) {
            Py_DECREF(fast);
            PyErr_SetString(PyExc_ValueError, "too many names of one hash");
            return -1;
        }
        bucket[j] = (signed char)i;
    }
    names->count = (int)n;
    Py_DECREF(fast);
    return 0;
}

static PyObject *prescan_configure(PyObject *module, PyObject *args) {
    PyObject *top, *variables;
    if (!PyArg_ParseTuple(args, "OO", &top, &variables))
        return NULL;
    if (set_names(&top_names, top) < 0 || set_names(&variable_names, variables) < 0)
        return NULL;
    configured = 1;
    Py_RETURN_NONE;
}

/* Percent-decoding of a body mod_json_cdr sends with encode=true: every byte of a CDR's
 * JSON but letters and digits comes as %XX, a few thousand escapes per CDR, which
 * urllib.parse.unquote_to_bytes decodes one Python call apiece. Same result: a '%' that
 * two hex digits do not follow is kept as it is. */
/* Percent-decoded, as urllib.parse.unquote_to_bytes does; with `strict`, the offset of the
 * first '%' that two hex digits do not follow instead (an int), so that encode=true bodies are
 * checked and decoded in one pass. */
static PyObject *percent_decode(PyObject *arg, int strict) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *s = view.buf;
    Py_ssize_t n = view.len, j = 0;
    const unsigned char *first = memchr(s, '%', (size_t)n);
    if (first == NULL) {  /* nothing to decode */
        PyObject *same = PyBytes_FromStringAndSize((const char *)s, n);
        PyBuffer_Release(&view);
        return same;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    unsigned char *d = (unsigned char *)PyBytes_AS_STRING(out);
    Py_ssize_t i = first - s;
    memcpy(d, s, (size_t)i);
    j = i;
    for (; i < n; i++) {
        unsigned char c = s[i];
        if (c == '%') {
            int high = i + 2 < n ? hex_of[s[i + 1]] : -1, low = i + 2 < n ? hex_of[s[i + 2]] : -1;
            if (high >= 0 && low >= 0) {
                d[j++] = (unsigned char)(high << 4 | low);
                i += 2;
                continue;
            }
            if (strict) {
                PyBuffer_Release(&view);
                Py_DECREF(out);
                return PyLong_FromSsize_t(i);
            }
        }
        d[j++] = c;
    }
    PyBuffer_Release(&view);
    if (_PyBytes_Resize(&out, j) < 0)
        return NULL;
    return out;
}

static PyObject *prescan_unquote(PyObject *module, PyObject *arg) {
    return percent_decode(arg, 0);
}

static PyObject *prescan_unquote_strict(PyObject *module, PyObject *arg) {
    return percent_decode(arg, 1);
}

/* Where the first '%' without two hex digits after it is, -1 when there is none. */
static PyObject *prescan_bad_percent(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *s = view.buf, *p = s, *end = s + view.len;
    Py_ssize_t found = -1;
    while ((p = memchr(p, '%', (size_t)(end - p))) != NULL) {
        if (end - p < 3 || !is_hex(p[1]) || !is_hex(p[2])) {
            found = p - s;
            break;
        }
        p += 3;
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(found);
}

static PyMethodDef methods[] = {
    {"members", prescan_members, METH_O,
     "members(raw: bytes) -> bytes | None\n\n"
     "The document reduced to its wanted members, or None when only the slow path can tell."},
    {"end_epoch", prescan_end_epoch, METH_O,
     "end_epoch(raw: bytes) -> int\n\n"
     "The plain value of the one \"end_epoch\" key, without decoding; -1 when it is not plain."},
    {"split_lines", prescan_split_lines, METH_VARARGS,
     "split_lines(data: buffer, jobs: int, index: int, window: int, passed=None, record=None,\n"
     "            stop=-1) -> (list, int, int, int)\n\n"
     "The complete lines of JSON Lines data for process index of jobs: a plain document of its\n"
     "windows as bytes (no newline), of another's as passed, any other line as (line,); then\n"
     "the bytes used, the number of (line,) items and the bytes of the documents copied.\n"
     "record: a bytearray each line appends (start, end, plain end time or -1) to, as int64;\n"
     "stop: no line starting at or after this offset is taken."},
    {"deeper_than", prescan_deeper_than, METH_VARARGS,
     "deeper_than(raw: bytes, limit: int) -> bool\n\n"
     "Whether brackets outside strings nest deeper than limit (the bytes need not be JSON)."},
    {"unquote", prescan_unquote, METH_O,
     "unquote(data: bytes) -> bytes\n\n"
     "Percent-decoded, as urllib.parse.unquote_to_bytes does (a '%' without two hex digits stays)."},
    {"unquote_strict", prescan_unquote_strict, METH_O,
     "unquote_strict(data: bytes) -> bytes | int\n\n"
     "Percent-decoded, or the offset of the first '%' that two hex digits do not follow."},
    {"bad_percent", prescan_bad_percent, METH_O,
     "bad_percent(data: bytes) -> int\n\n"
     "The offset of the first '%' that two hex digits do not follow, -1 when there is none."},
    {"configure", prescan_configure, METH_VARARGS,
     "configure(top_level_names, variable_names): the members that members() keeps."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_prescan",
    "The compiled pre-scan of a CDR document (see sixminutes/call.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__prescan(void) {
    init_tables();
    return PyModule_Create(&module_def);
}
