/* The strict JSON scanner shared by the compiled modules (_prescan.c, _columns.c).
 *
 * It validates RFC 8259 grammar over ASCII only: a non-ASCII byte, a control character in a
 * string, a \u escape of a surrogate or nesting deeper than MAX_DEPTH fails the scan, and the
 * caller hands the document to the slow path (msgspec), which gives the exact answer.
 * Everything is static: each module including it gets its own copy of the tables.
 */
#ifndef SIXMINUTES_JSONSCAN_H
#define SIXMINUTES_JSONSCAN_H

#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE  /* memmem */
#include <Python.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The scanners called for every string and member: inlined into their callers, about a
 * tenth fewer instructions per CDR than leaving it to the compiler (callgrind). */
#if defined(__GNUC__) || defined(__clang__)
#define HOT static inline __attribute__((always_inline))
#else
#define HOT static inline
#endif

#define MAX_DEPTH 64

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
    unsigned char *out;
    unsigned char *out_end;
} Scan;

/* 1 for the bytes that end a run of plain string characters: '"', '\\', controls, non-ASCII. */
static unsigned char string_stop[256];

/* A byte's value as a hex digit, -1 for any other byte. */
static signed char hex_of[256];

static inline void init_tables(void) {
    for (int c = 0; c < 256; c++) {
        string_stop[c] = (c < 0x20 || c == '"' || c == '\\' || c >= 0x80);
        hex_of[c] = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    }
}

static inline int is_hex(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static inline int hex_value(unsigned char c) {
    if (c <= '9') return c - '0';
    if (c >= 'a') return c - 'a' + 10;
    return c - 'A' + 10;
}

/* The first byte of [p, end) that ends a run of plain string characters (end if none). */
HOT const unsigned char *string_run(const unsigned char *p, const unsigned char *end) {
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        /* signed compare: controls (< 0x20) and non-ASCII (negative) together */
        __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote),
                                                 _mm_cmpeq_epi8(v, backslash)),
                                    _mm_cmplt_epi8(v, space));
        int mask = _mm_movemask_epi8(stop);
        if (mask)
            return p + __builtin_ctz(mask);
        p += 16;
    }
#else
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (end - p >= 8) {
        uint64_t v, q, b;
        memcpy(&v, p, 8);
        q = v ^ (ones * '"');
        b = v ^ (ones * '\\');
        /* a high bit marks a byte that may stop the run; none means none does */
        if ((((q - ones) & ~q) | ((b - ones) & ~b) | (v - ones * 0x20) | v) & highs)
            break;
        p += 8;
    }
#endif
    while (p < end && !string_stop[*p])
        p++;
    return p;
}

HOT void skip_ws(Scan *s) {
    /* compact JSON has none: one test in the usual case */
    while (s->p < s->end && *s->p <= ' '
           && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* A string starting at s->p (on its quote); *escaped is set when it holds a backslash. */
HOT int scan_string(Scan *s, int *escaped) {
    const unsigned char *p = s->p + 1, *end = s->end;
    *escaped = 0;
    for (;;) {
        p = string_run(p, end);
        if (p >= end)
            return -1;
        if (*p == '"') {
            s->p = p + 1;
            return 0;
        }
        if (*p != '\\')
            return -1;  /* a control character or a non-ASCII byte: the slow path decides */
        *escaped = 1;
        if (p + 1 >= end)
            return -1;
        switch (p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p += 2;
            break;
        case 'u':
            if (p + 6 > end || !is_hex(p[2]) || !is_hex(p[3]) || !is_hex(p[4]) || !is_hex(p[5]))
                return -1;
            /* U+D800..U+DFFF: surrogates, whose pairing the slow path judges */
            if ((hex_value(p[2]) == 0xD) && hex_value(p[3]) >= 8)
                return -1;
            p += 6;
            break;
        default:
            return -1;
        }
    }
}

static int scan_digits(Scan *s) {
    const unsigned char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start ? 0 : -1;
}

static int scan_number(Scan *s) {
    if (*s->p == '-')
        s->p++;
    if (s->p >= s->end)
        return -1;
    if (*s->p == '0')
        s->p++;
    else if (scan_digits(s) < 0)
        return -1;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (scan_digits(s) < 0)
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (scan_digits(s) < 0)
            return -1;
    }
    return 0;
}

static int scan_literal(Scan *s, const char *word, Py_ssize_t n) {
    if (s->end - s->p < n || memcmp(s->p, word, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

static int scan_value(Scan *s, int depth);

/* After a member or an element: 1 at a comma, 0 at the closing byte (each passed), -1 else. */
HOT int next_item(Scan *s, unsigned char close) {
    skip_ws(s);
    if (s->p >= s->end)
        return -1;
    if (*s->p == ',') {
        s->p++;
        skip_ws(s);
        return 1;
    }
    if (*s->p == close) {
        s->p++;
        return 0;
    }
    return -1;
}

/* An object or array starting at s->p; members are checked, nothing is copied. */
static int scan_container(Scan *s, int depth) {
    unsigned char close = *s->p == '{' ? '}' : ']';
    int is_object = close == '}', escaped;
    if (depth > MAX_DEPTH)
        return -1;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    for (;;) {
        if (is_object) {
            if (s->p >= s->end || *s->p != '"' || scan_string(s, &escaped) < 0)
                return -1;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return -1;
            s->p++;
            skip_ws(s);
        }
        if (scan_value(s, depth + 1) < 0)
            return -1;
        int more = next_item(s, close);
        if (more <= 0)
            return more;
    }
}

static int scan_value(Scan *s, int depth) {
    int escaped;
    if (s->p >= s->end)
        return -1;
    if (*s->p == '"')  /* most values of a CDR: tested first, a well predicted branch */
        return scan_string(s, &escaped);
    switch (*s->p) {
    case '{': case '[': return scan_container(s, depth);
    case 't': return scan_literal(s, "true", 4);
    case 'f': return scan_literal(s, "false", 5);
    case 'n': return scan_literal(s, "null", 4);
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
            return scan_number(s);
        return -1;
    }
}

/* A member's key (a string without escapes: an escaped key might spell a wanted name, the
 * slow path decides) and its colon; s->p is left on the value, *key and *key_len name the
 * key's bytes without quotes. */
HOT int scan_key(Scan *s, const unsigned char **key, Py_ssize_t *key_len) {
    int escaped;
    if (s->p >= s->end || *s->p != '"')
        return -1;
    *key = s->p + 1;
    if (scan_string(s, &escaped) < 0 || escaped)
        return -1;
    *key_len = s->p - 1 - *key;
    skip_ws(s);
    if (s->p >= s->end || *s->p != ':')
        return -1;
    s->p++;
    skip_ws(s);
    return 0;
}

/* A member: its key and colon (scan_key), its value, whose bytes start at *value. */
HOT int scan_member(Scan *s, int depth, const unsigned char **key, Py_ssize_t *key_len,
                       const unsigned char **value) {
    if (scan_key(s, key, key_len) < 0)
        return -1;
    *value = s->p;
    return scan_value(s, depth);
}

#endif
