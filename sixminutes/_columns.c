/* A batch of CDR documents decoded straight into columns: no Python object per CDR.
 *
 * For each document (bytes of one JSON object), the strict scanner of _jsonscan.h validates
 * the whole of it and notes where the variables the Call is built from lie; the Call's fields
 * are then computed here, as call.py's _call computes them, into numeric columns and
 * dictionary-encoded text columns (a code per row, each distinct value made a str once).
 *
 * Only documents whose every value read is plain take this path: a string without escapes
 * (its %XX URL-decoded here as call.py does, while they decode to ASCII), a whole number of at
 * most 18 digits for a number, a decimal for the MOS, null or absent. Anything else (a change
 * row, a deletion, a design document, an escaped or repeated key, non-ASCII bytes, a number
 * where text is read...) is marked slow, and columns.py decodes it with call.py's decode():
 * that path gives every answer its exact value or rejection. tests/test_columns.py holds the
 * two equal on real, generated and hostile documents.
 */
#include "_jsonscan.h"
#include <math.h>
#include <stdlib.h>

/* The variables read, in the order of call.py's _Vars (a test compares the two). */
enum {
    V_END_EPOCH, V_CCNQ_PROFILE, V_SIP_GATEWAY_NAME, V_SOFIA_PROFILE_NAME, V_CCNQ_DIRECTION,
    V_DIRECTION, V_CCNQ_ACCOUNT, V_ACCOUNTCODE, V_CCNQ_FROM_E164, V_SIP_FROM_USER,
    V_CCNQ_TO_E164, V_SIP_TO_USER, V_BILLSEC, V_DURATION, V_START_EPOCH, V_ANSWER_EPOCH,
    V_SIP_TERM_STATUS, V_SIP_INVITE_FAILURE_STATUS, V_HANGUP_CAUSE, V_HANGUP_CAUSE_Q850,
    V_PROGRESS_MEDIAMSEC, V_PROGRESSMSEC, V_RTP_AUDIO_IN_MOS, V_UUID, N_VARS
};
static const char *const var_names[N_VARS] = {
    "end_epoch", "ccnq_profile", "sip_gateway_name", "sofia_profile_name", "ccnq_direction",
    "direction", "ccnq_account", "accountcode", "ccnq_from_e164", "sip_from_user",
    "ccnq_to_e164", "sip_to_user", "billsec", "duration", "start_epoch", "answer_epoch",
    "sip_term_status", "sip_invite_failure_status", "hangup_cause", "hangup_cause_q850",
    "progress_mediamsec", "progressmsec", "rtp_audio_in_mos", "uuid",
};

/* The text columns, in the order of batch.py's TEXTS, and what each is when nothing is read. */
enum { T_ID, T_PROFILE, T_DIRECTION, T_ACCOUNT, T_FROM, T_TO, T_SIP_CODE, T_HANGUP_CAUSE,
       T_Q850, N_TEXTS };
static const char *const text_names[N_TEXTS] = {
    "id", "profile", "direction", "account", "from_", "to", "sip_code", "hangup_cause", "q850",
};
static const char *const text_defaults[N_TEXTS] = {
    NULL, "unknown", "unknown", "unknown", "", "", "none", "none", NULL,
};

/* The numeric columns: int64 ones, then float64 ones (NaN for an unknown measure). */
enum { I_END_EPOCH, I_START_EPOCH, I_BILLSEC, I_DURATION, I_ANSWERED, N_INTS };
enum { F_PDD_MS, F_MOS, N_FLOATS };

enum { FAST = 0, SLOW = 1, SKIPPED = 2 };

#define EPOCH_2000 946684800LL
#define MAX_INT (1LL << 53)

/* A value as found: where its text lies (inside the quotes for a string) and its kind. */
enum { ABSENT = 0, STRING, ESCAPED, NUMBER, NUL, OTHER };
typedef struct {
    const unsigned char *text;
    Py_ssize_t len;
    int kind;
} Slot;

/* Variable names by (length, first byte, last byte): a CDR has ~180 variables to turn down. */
#define VAR_BUCKETS 512
static signed char var_bucket[VAR_BUCKETS][2];

static unsigned var_hash(const unsigned char *key, Py_ssize_t n) {
    return ((unsigned)n * 67u + key[0] * 13u + key[n - 1]) % VAR_BUCKETS;
}

static int init_var_names(void) {
    memset(var_bucket, -1, sizeof var_bucket);
    for (int i = 0; i < N_VARS; i++) {
        const unsigned char *name = (const unsigned char *)var_names[i];
        signed char *bucket = var_bucket[var_hash(name, (Py_ssize_t)strlen(var_names[i]))];
        int j = bucket[0] < 0 ? 0 : 1;
        if (bucket[j] >= 0)
            return -1;  /* two names would need a bigger bucket: caught at import */
        bucket[j] = (signed char)i;
    }
    return 0;
}

HOT int var_index(const unsigned char *key, Py_ssize_t n) {
    if (n == 0)
        return -1;
    const signed char *bucket = var_bucket[var_hash(key, n)];
    for (int j = 0; j < 2 && bucket[j] >= 0; j++) {
        const char *name = var_names[(int)bucket[j]];
        if ((Py_ssize_t)strlen(name) == n && memcmp(name, key, n) == 0)
            return bucket[j];
    }
    return -1;
}

/* The value of a member: s->p on its first byte; the slot describes it once scanned. */
static int scan_slot(Scan *s, int depth, Slot *slot) {
    const unsigned char *start = s->p;
    int escaped;
    if (s->p >= s->end)
        return -1;
    if (*s->p == '"') {
        if (scan_string(s, &escaped) < 0)
            return -1;
        slot->text = start + 1;
        slot->len = s->p - start - 2;
        slot->kind = escaped ? ESCAPED : STRING;
        return 0;
    }
    if (scan_value(s, depth) < 0)
        return -1;
    slot->text = start;
    slot->len = s->p - start;
    slot->kind = *start == 'n' ? NUL : (*start == '-' || (*start >= '0' && *start <= '9'))
                 ? NUMBER : OTHER;
    return 0;
}

/* A document's slots: 0 when every byte of it was scanned and nothing asks for the slow path. */
static int scan_document(const unsigned char *data, Py_ssize_t size, Slot *vars, Slot *id,
                         Slot *alt_id) {
    Scan s;
    const unsigned char *key;
    Py_ssize_t key_len;
    int variables = 0;
    s.p = data;
    s.end = data + size;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return -1;
    s.p++;
    skip_ws(&s);
    if (s.p < s.end && *s.p == '}')
        return -1;  /* {}: no variables */
    for (;;) {
        if (scan_key(&s, &key, &key_len) < 0)
            return -1;
        if (key_len == 9 && memcmp(key, "variables", 9) == 0) {
            if (variables++ || s.p >= s.end || *s.p != '{')
                return -1;
            s.p++;
            skip_ws(&s);
            if (s.p < s.end && *s.p == '}') {
                s.p++;
            } else {
                for (;;) {
                    const unsigned char *vkey;
                    Py_ssize_t vlen;
                    if (scan_key(&s, &vkey, &vlen) < 0)
                        return -1;
                    int i = var_index(vkey, vlen);
                    if (i >= 0) {
                        if (vars[i].kind != ABSENT || scan_slot(&s, 2, &vars[i]) < 0)
                            return -1;  /* (a repeated variable: msgspec decides) */
                    } else if (scan_value(&s, 2) < 0) {
                        return -1;
                    }
                    int more = next_item(&s, '}');
                    if (more < 0)
                        return -1;
                    if (more == 0)
                        break;
                }
            }
        } else if (key_len == 3 && memcmp(key, "_id", 3) == 0) {
            if (id->kind != ABSENT || scan_slot(&s, 1, id) < 0)
                return -1;
        } else if (key_len == 2 && memcmp(key, "id", 2) == 0) {
            if (alt_id->kind != ABSENT || scan_slot(&s, 1, alt_id) < 0)
                return -1;
        } else if ((key_len == 3 && memcmp(key, "doc", 3) == 0)
                   || (key_len == 8 && memcmp(key, "_deleted", 8) == 0)
                   || (key_len == 7 && memcmp(key, "deleted", 7) == 0)) {
            return -1;  /* a change row or a deletion */
        } else if (scan_value(&s, 1) < 0) {
            return -1;
        }
        int more = next_item(&s, '}');
        if (more < 0)
            return -1;
        if (more == 0)
            break;
    }
    skip_ws(&s);
    return s.p == s.end && variables ? 0 : -1;
}

/* A whole number as msgspec reads it from text or a JSON number: 1 with *out, 0 when there
 * is none (absent, null: call.py's default applies), -1 when only the slow path can tell. */
static int read_int(const Slot *slot, long long *out) {
    if (slot->kind == ABSENT || slot->kind == NUL)
        return 0;
    if (slot->kind != STRING && slot->kind != NUMBER)
        return -1;
    const unsigned char *p = slot->text, *end = p + slot->len;
    int negative = p < end && *p == '-';
    p += negative;
    if (p >= end || end - p > 18 || (*p == '0' && (end - p > 1 || negative)))
        return -1;
    long long value = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        value = value * 10 + (*p - '0');
    }
    *out = negative ? -value : value;
    return 1;
}

/* The MOS: a decimal (digits, an optional fraction), as text or a number; NaN when absent. */
static int read_float(const Slot *slot, double *out) {
    char buffer[40];
    if (slot->kind == ABSENT || slot->kind == NUL) {
        *out = NAN;
        return 0;
    }
    if ((slot->kind != STRING && slot->kind != NUMBER) || slot->len == 0
            || slot->len >= (Py_ssize_t)sizeof buffer)
        return -1;
    const unsigned char *p = slot->text, *end = p + slot->len;
    p += *p == '-';
    if (p >= end || *p < '0' || *p > '9' || (*p == '0' && p + 1 < end && p[1] != '.'))
        return -1;
    int dot = 0;
    for (const unsigned char *q = p; q < end; q++) {
        if (*q == '.') {
            if (dot++ || q + 1 >= end)
                return -1;
        } else if (*q < '0' || *q > '9') {
            return -1;
        }
    }
    memcpy(buffer, slot->text, slot->len);
    buffer[slot->len] = 0;
    double value = strtod(buffer, NULL);
    *out = (-(double)MAX_INT <= value && value <= (double)MAX_INT) ? value : NAN;
    return 1;
}

/* The first of a chain of text variables that holds some text (call.py's `a or b or c`,
 * before URL-decoding): 1 with *chosen, 0 when none does, -1 when only the slow path can tell. */
static int read_text(const Slot *vars, const int *chain, int n, const Slot **chosen) {
    for (int i = 0; i < n; i++) {
        const Slot *slot = &vars[chain[i]];
        if (slot->kind == ABSENT || slot->kind == NUL)
            continue;
        if (slot->kind != STRING)
            return -1;
        if (slot->len == 0)
            continue;
        *chosen = slot;
        return 1;
    }
    return 0;
}

/* Texts URL-decoded for a batch (FreeSWITCH encodes its variables' values: "%2B4930..."),
 * kept until the batch's dictionaries are made: blocks that never move once written. */
typedef struct Block {
    struct Block *next;
    size_t used, size;
    unsigned char data[];
} Block;

typedef struct {
    Block *head;
} Arena;

static unsigned char *arena_take(Arena *arena, size_t n) {
    Block *b = arena->head;
    if (b == NULL || b->size - b->used < n) {
        size_t size = n > 65536 ? n : 65536;
        b = malloc(sizeof(Block) + size);
        if (b == NULL)
            return NULL;
        b->next = arena->head;
        b->used = 0;
        b->size = size;
        arena->head = b;
    }
    unsigned char *p = b->data + b->used;
    b->used += n;
    return p;
}

static void arena_free(Arena *arena) {
    while (arena->head != NULL) {
        Block *next = arena->head->next;
        free(arena->head);
        arena->head = next;
    }
}

/* A text as call.py's _text reads it: %XX decoded (a '%' without two hex digits kept), into
 * the arena when it holds any. 0 with *text and *len; 1 when a decoded byte is not ASCII
 * (urllib reads it as UTF-8, with replacements: the slow path's); -2 out of memory. */
static int url_decoded(const Slot *slot, Arena *arena, const unsigned char **text,
                       Py_ssize_t *len) {
    const unsigned char *p = slot->text, *end = p + slot->len;
    const unsigned char *first = memchr(p, '%', slot->len);
    if (first == NULL) {
        *text = p;
        *len = slot->len;
        return 0;
    }
    unsigned char *out = arena_take(arena, (size_t)slot->len), *d = out;
    if (out == NULL)
        return -2;
    memcpy(d, p, first - p);
    d += first - p;
    for (p = first; p < end; p++) {
        int high, low;
        if (*p == '%' && end - p >= 3 && (high = hex_of[p[1]]) >= 0 && (low = hex_of[p[2]]) >= 0) {
            unsigned char c = (unsigned char)(high << 4 | low);
            if (c >= 0x80)
                return 1;
            *d++ = c;
            p += 2;
        } else {
            *d++ = *p;
        }
    }
    *text = out;
    *len = d - out;
    return 0;
}

/* Distinct values of a text column: an open-addressing table of (bytes, code), and the list
 * of the values as str in order of first use. The absent value (a default) is len -1. */
typedef struct {
    const unsigned char *text;
    Py_ssize_t len;
    long long code;
} Entry;

typedef struct {
    Entry *entries;
    size_t mask;
    PyObject *values;
    long long absent;
} Dictionary;

static uint64_t text_hash(const unsigned char *p, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)n;
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static long long dictionary_code(Dictionary *d, const unsigned char *text, Py_ssize_t len,
                                 const char *fallback) {
    PyObject *value;
    if (text == NULL) {
        if (d->absent >= 0)
            return d->absent;
        if (fallback == NULL) {
            value = Py_None;
            Py_INCREF(value);
        } else {
            value = PyUnicode_FromString(fallback);
        }
        if (value == NULL || PyList_Append(d->values, value) < 0) {
            Py_XDECREF(value);
            return -1;
        }
        Py_DECREF(value);
        return d->absent = PyList_GET_SIZE(d->values) - 1;
    }
    size_t i = (size_t)text_hash(text, len) & d->mask;
    for (;;) {
        Entry *e = &d->entries[i];
        if (e->text == NULL)
            break;
        if (e->len == len && memcmp(e->text, text, len) == 0)
            return e->code;
        i = (i + 1) & d->mask;
    }
    value = PyUnicode_DecodeASCII((const char *)text, len, NULL);
    if (value == NULL || PyList_Append(d->values, value) < 0) {
        Py_XDECREF(value);
        return -1;
    }
    Py_DECREF(value);
    Entry *e = &d->entries[i];
    e->text = text;
    e->len = len;
    e->code = PyList_GET_SIZE(d->values) - 1;
    return e->code;
}

static const int PROFILE_CHAIN[] = {V_CCNQ_PROFILE, V_SIP_GATEWAY_NAME, V_SOFIA_PROFILE_NAME};
static const int DIRECTION_CHAIN[] = {V_CCNQ_DIRECTION, V_DIRECTION};
static const int ACCOUNT_CHAIN[] = {V_CCNQ_ACCOUNT, V_ACCOUNTCODE};
static const int FROM_CHAIN[] = {V_CCNQ_FROM_E164, V_SIP_FROM_USER};
static const int TO_CHAIN[] = {V_CCNQ_TO_E164, V_SIP_TO_USER};
static const int SIP_CHAIN[] = {V_SIP_TERM_STATUS, V_SIP_INVITE_FAILURE_STATUS};
static const int CAUSE_CHAIN[] = {V_HANGUP_CAUSE};
static const int Q850_CHAIN[] = {V_HANGUP_CAUSE_Q850};
static const int UUID_CHAIN[] = {V_UUID};

static const int *const chains[N_TEXTS] = {
    UUID_CHAIN, PROFILE_CHAIN, DIRECTION_CHAIN, ACCOUNT_CHAIN, FROM_CHAIN, TO_CHAIN,
    SIP_CHAIN, CAUSE_CHAIN, Q850_CHAIN,
};
static const int chain_lengths[N_TEXTS] = {1, 3, 2, 2, 2, 2, 2, 1, 1};

/* The document's id (call.py: `_id`, else `id`, else the uuid variable): -1 for the slow path,
 * 0 with *chosen NULL when the id is the uuid's (or none), 1 with the id's text. */
static int read_id(const Slot *id, const Slot *alt_id, const Slot **chosen) {
    const Slot *slot = (id->kind == ABSENT || id->kind == NUL) ? alt_id : id;
    *chosen = NULL;
    if (slot->kind == ABSENT || slot->kind == NUL)
        return 0;
    if (slot->kind != STRING)
        return -1;  /* a number (read as text), an escape, anything else */
    if (slot->len >= 8 && memcmp(slot->text, "_design/", 8) == 0)
        return -1;
    if (slot->len == 0)
        return 0;  /* "" is no id: the uuid's */
    *chosen = slot;
    return 1;
}

/* One document's fields into row `row` of the columns; -1 for the slow path (nothing written
 * that matters: the caller marks the row slow), -2 on a Python error. */
static int decode_row(const unsigned char *data, Py_ssize_t size, Py_ssize_t row, Py_ssize_t n,
                      long long *ints, double *floats, long long *codes, Dictionary *dicts,
                      Arena *arena) {
    Slot vars[N_VARS], id, alt_id;
    const Slot *chosen[N_TEXTS];
    long long number[N_VARS];
    memset(vars, 0, sizeof vars);
    memset(&id, 0, sizeof id);
    memset(&alt_id, 0, sizeof alt_id);
    if (scan_document(data, size, vars, &id, &alt_id) < 0)
        return -1;
    static const int int_vars[] = {V_END_EPOCH, V_BILLSEC, V_DURATION, V_START_EPOCH,
                                   V_ANSWER_EPOCH, V_PROGRESS_MEDIAMSEC, V_PROGRESSMSEC};
    for (size_t k = 0; k < sizeof int_vars / sizeof int_vars[0]; k++) {
        int v = int_vars[k], found = read_int(&vars[v], &number[v]);
        if (found < 0)
            return -1;
        if (found == 0) {
            if (v == V_END_EPOCH)
                return -1;  /* missing: the slow path rejects it */
            number[v] = 0;
        }
    }
    long long end = number[V_END_EPOCH];
    if (end < EPOCH_2000)
        return -1;
    double mos;
    if (read_float(&vars[V_RTP_AUDIO_IN_MOS], &mos) < 0)
        return -1;
    /* every text variable read must be plain, used or not (a number where text is read is
     * turned into text by the slow path, which this one does not do) */
    for (int t = 0; t < N_TEXTS; t++)
        for (int i = 0; i < chain_lengths[t]; i++) {
            int kind = vars[chains[t][i]].kind;
            if (kind != ABSENT && kind != NUL && kind != STRING)
                return -1;
        }
    const Slot *doc_id;
    int has_id = read_id(&id, &alt_id, &doc_id);
    if (has_id < 0)
        return -1;
    for (int t = 0; t < N_TEXTS; t++) {
        chosen[t] = NULL;
        if (t == T_ID && has_id) {
            chosen[t] = doc_id;
            continue;
        }
        if (read_text(vars, chains[t], chain_lengths[t], &chosen[t]) < 0)
            return -1;
    }
    long long billsec = number[V_BILLSEC], duration = number[V_DURATION];
    billsec = (0 < billsec && billsec <= MAX_INT) ? billsec : 0;
    duration = (0 < duration && duration <= MAX_INT) ? duration : 0;
    long long media = number[V_PROGRESS_MEDIAMSEC];
    long long pdd = (0 < media && media <= MAX_INT) ? media : number[V_PROGRESSMSEC];
    long long start = number[V_START_EPOCH];
    ints[I_END_EPOCH * n + row] = end;
    ints[I_START_EPOCH * n + row] = (EPOCH_2000 <= start && start <= end) ? start : end - duration;
    ints[I_BILLSEC * n + row] = billsec;
    ints[I_DURATION * n + row] = duration;
    ints[I_ANSWERED * n + row] = number[V_ANSWER_EPOCH] > 0 || billsec > 0;
    floats[F_PDD_MS * n + row] = (0 < pdd && pdd <= MAX_INT) ? (double)pdd : NAN;
    floats[F_MOS * n + row] = mos;
    const unsigned char *text[N_TEXTS];
    Py_ssize_t len[N_TEXTS];
    for (int t = 0; t < N_TEXTS; t++) {
        text[t] = NULL;
        len[t] = 0;
        if (chosen[t] == NULL)
            continue;
        if (t == T_ID && has_id) {  /* the _id as it is: call.py does not URL-decode it */
            text[t] = chosen[t]->text;
            len[t] = chosen[t]->len;
            continue;
        }
        int done = url_decoded(chosen[t], arena, &text[t], &len[t]);
        if (done != 0)
            return done == 1 ? -1 : -2;
    }
    for (int t = 0; t < N_TEXTS; t++) {
        long long code = dictionary_code(&dicts[t], text[t], len[t], text_defaults[t]);
        if (code < 0)
            return -2;
        codes[t * n + row] = code;
    }
    return 0;
}

static int writable(PyObject *obj, Py_buffer *view, Py_ssize_t bytes, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->len != bytes) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, not %zd", what, view->len, bytes);
        return -1;
    }
    return 0;
}

/* decode(items, skip, status, ints, floats, codes) -> tuple of the text columns' distinct values */
static PyObject *columns_decode(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *items, *skip, *status_obj, *ints_obj, *floats_obj, *codes_obj, *result = NULL;
    Py_buffer status, ints, floats, codes;
    Dictionary dicts[N_TEXTS];
    Arena arena = {NULL};
    int failed = 0;
    if (!PyArg_ParseTuple(args, "O!OOOOO", &PyList_Type, &items, &skip, &status_obj, &ints_obj,
                          &floats_obj, &codes_obj))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(items);
    if (writable(status_obj, &status, n, "status") < 0)
        return NULL;
    if (writable(ints_obj, &ints, (Py_ssize_t)sizeof(long long) * N_INTS * n, "ints") < 0) {
        PyBuffer_Release(&status);
        return NULL;
    }
    if (writable(floats_obj, &floats, (Py_ssize_t)sizeof(double) * N_FLOATS * n, "floats") < 0) {
        PyBuffer_Release(&status);
        PyBuffer_Release(&ints);
        return NULL;
    }
    if (writable(codes_obj, &codes, (Py_ssize_t)sizeof(long long) * N_TEXTS * n, "codes") < 0) {
        PyBuffer_Release(&status);
        PyBuffer_Release(&ints);
        PyBuffer_Release(&floats);
        return NULL;
    }
    size_t capacity = 16;
    while (capacity < 2 * (size_t)n + 2)
        capacity <<= 1;
    memset(dicts, 0, sizeof dicts);
    for (int t = 0; t < N_TEXTS && !failed; t++) {
        dicts[t].entries = calloc(capacity, sizeof(Entry));
        dicts[t].mask = capacity - 1;
        dicts[t].values = PyList_New(0);
        dicts[t].absent = -1;
        failed = dicts[t].entries == NULL || dicts[t].values == NULL;
    }
    if (failed)
        PyErr_NoMemory();
    unsigned char *state = status.buf;
    for (Py_ssize_t row = 0; row < n && !failed; row++) {
        PyObject *item = PyList_GET_ITEM(items, row);
        if (item == skip) {
            state[row] = SKIPPED;
            continue;
        }
        if (!PyBytes_CheckExact(item)) {
            state[row] = SLOW;
            continue;
        }
        int done = decode_row((const unsigned char *)PyBytes_AS_STRING(item),
                              PyBytes_GET_SIZE(item), row, n, ints.buf, floats.buf, codes.buf,
                              dicts, &arena);
        if (done == -2)
            failed = 1;
        state[row] = done == 0 ? FAST : SLOW;
    }
    if (!failed && (result = PyTuple_New(N_TEXTS)) != NULL)
        for (int t = 0; t < N_TEXTS; t++) {
            PyTuple_SET_ITEM(result, t, dicts[t].values);
            dicts[t].values = NULL;
        }
    for (int t = 0; t < N_TEXTS; t++) {
        free(dicts[t].entries);
        Py_XDECREF(dicts[t].values);
    }
    arena_free(&arena);
    PyBuffer_Release(&status);
    PyBuffer_Release(&ints);
    PyBuffer_Release(&floats);
    PyBuffer_Release(&codes);
    return result;
}

static PyMethodDef methods[] = {
    {"decode", columns_decode, METH_VARARGS,
     "decode(items: list, skip, status, ints, floats, codes) -> tuple[list, ...]\n\n"
     "Decode a batch into the given buffers (status: uint8[n]; ints: int64[5, n]; floats:\n"
     "float64[2, n]; codes: int64[9, n]); return each text column's distinct values. A row's\n"
     "status is 0 when decoded here, 1 when only call.decode() can tell, 2 for an item that\n"
     "is skip (not read: another process counts it)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_columns",
    "A batch of CDR documents decoded into columns (see sixminutes/columns.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__columns(void) {
    init_tables();
    if (init_var_names() < 0) {
        PyErr_SetString(PyExc_RuntimeError, "_columns: variable names collide in their table");
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    PyObject *names = PyTuple_New(N_VARS), *texts = PyTuple_New(N_TEXTS);
    if (names == NULL || texts == NULL) {
        Py_XDECREF(names);
        Py_XDECREF(texts);
        Py_DECREF(module);
        return NULL;
    }
    for (int i = 0; i < N_VARS; i++)
        PyTuple_SET_ITEM(names, i, PyUnicode_FromString(var_names[i]));
    for (int i = 0; i < N_TEXTS; i++)
        PyTuple_SET_ITEM(texts, i, PyUnicode_FromString(text_names[i]));
    if (PyModule_AddObject(module, "VARIABLES", names) < 0
            || PyModule_AddObject(module, "TEXTS", texts) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
