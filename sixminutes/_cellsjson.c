/* A window's cells written as the JSON of /6minutes/data, straight from the Store's table.
 *
 * A replay's --json holds hundreds of thousands of Stats; building a dict per Stat and
 * serializing it costs ~0.7 us a cell. This writes
 *
 *     {"<key>":{"sum":S,"count":C,"squares":Q,"min":m,"max":M},...}
 *
 * from the keys and the table rows (sum, count, squares, min, max as doubles) directly: a
 * number that is integral and below 2**53 in magnitude as an integer (as Stat.to_json writes
 * it), any other finite number as Python's repr() writes it (the shortest text that reads back
 * the same double), a non-finite one as null (as orjson writes it). Keys are escaped as JSON
 * strings (quote, backslash and control characters; everything else is written as UTF-8).
 * store.py falls back to the dicts when this module was not built.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Out;

static int reserve(Out *o, Py_ssize_t more) {
    if (o->len + more <= o->cap)
        return 0;
    Py_ssize_t cap = o->cap * 2 > o->len + more ? o->cap * 2 : o->len + more + 4096;
    char *data = PyMem_Realloc(o->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    o->data = data;
    o->cap = cap;
    return 0;
}

static int put(Out *o, const char *s, Py_ssize_t n) {
    if (reserve(o, n) < 0)
        return -1;
    memcpy(o->data + o->len, s, n);
    o->len += n;
    return 0;
}

static int put_key(Out *o, PyObject *key) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(key, &n);
    if (s == NULL)
        return -1;
    if (reserve(o, 6 * n + 2) < 0)  /* every byte escaped as \u00XX at most */
        return -1;
    char *w = o->data + o->len;
    *w++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *w++ = '\\';
            *w++ = (char)c;
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            *w++ = '\\';
            switch (c) {
            case '\b': *w++ = 'b'; break;
            case '\t': *w++ = 't'; break;
            case '\n': *w++ = 'n'; break;
            case '\f': *w++ = 'f'; break;
            case '\r': *w++ = 'r'; break;
            default:
                *w++ = 'u'; *w++ = '0'; *w++ = '0';
                *w++ = hex[c >> 4]; *w++ = hex[c & 15];
            }
        } else {
            *w++ = (char)c;
        }
    }
    *w++ = '"';
    o->len = w - o->data;
    return 0;
}

static int put_number(Out *o, double v) {
    if (!isfinite(v))
        return put(o, "null", 4);
    if (v == trunc(v) && fabs(v) < 9007199254740992.0) {
        char buf[24], *end = buf + sizeof buf, *p = end;
        long long n = (long long)v;
        unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (n < 0)
            *--p = '-';
        return put(o, p, end - p);
    }
    char *text = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (text == NULL)
        return -1;
    int failed = put(o, text, (Py_ssize_t)strlen(text));
    PyMem_Free(text);
    return failed;
}

static PyObject *cells_json(PyObject *module, PyObject *args) {
    PyObject *keys;
    Py_buffer view;
    static const char *names[] = {"{\"sum\":", ",\"count\":", ",\"squares\":", ",\"min\":",
                                  ",\"max\":"};
    static const Py_ssize_t lengths[] = {7, 9, 11, 7, 7};
    if (!PyArg_ParseTuple(args, "O!y*", &PyList_Type, &keys, &view))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(keys);
    if (view.len != n * 5 * (Py_ssize_t)sizeof(double)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "the table must hold five doubles per key");
        return NULL;
    }
    const double *table = view.buf;
    Out o = {NULL, 0, 0};
    int failed = reserve(&o, n * 96 + 2) < 0 || put(&o, "{", 1) < 0;
    for (Py_ssize_t i = 0; i < n && !failed; i++) {
        if (i && put(&o, ",", 1) < 0) {
            failed = 1;
            break;
        }
        if (put_key(&o, PyList_GET_ITEM(keys, i)) < 0 || put(&o, ":", 1) < 0) {
            failed = 1;
            break;
        }
        for (int j = 0; j < 5 && !failed; j++)
            failed = put(&o, names[j], lengths[j]) < 0
                     || put_number(&o, table[i * 5 + j]) < 0;
        failed = failed || put(&o, "}", 1) < 0;
    }
    failed = failed || put(&o, "}", 1) < 0;
    PyBuffer_Release(&view);
    PyObject *result = failed ? NULL : PyBytes_FromStringAndSize(o.data, o.len);
    PyMem_Free(o.data);
    return result;
}

static PyMethodDef methods[] = {
    {"cells_json", cells_json, METH_VARARGS,
     "cells_json(keys: list[str], table: buffer) -> bytes\n\n"
     "The cells as a JSON object: key -> {sum, count, squares, min, max} (table: n x 5 doubles)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_cellsjson",
    "A window's cells written as JSON (see sixminutes/store.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__cellsjson(void) {
    return PyModule_Create(&module_def);
}
