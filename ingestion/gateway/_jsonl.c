/*
 * _jsonl: one-pass reader of native gateway JSON lines (see ingestion/gateway/jsonl_scan.py).
 *
 * scan(buffer, fields) parses every line of a chunk of a JSON-lines file ONCE and returns,
 * as the buffers of Arrow string columns (bytes):
 *   - for each line that is an ordinary record: its 0-based line index in the chunk, each of
 *     `fields` as text exactly as DuckDB's JSON functions render it (strings unescaped;
 *     numbers, booleans, objects and arrays as minified JSON text; NULL when absent or null),
 *     and `extra`: the keys not in `fields`, as a JSON object (NULL when none);
 *   - for each "odd" line (not a JSON object, a duplicate key, an escaped key, a number or
 *     string in a form whose rendering is not certain here, an empty object, ...): its line
 *     index and its text. The caller reads those lines with DuckDB's JSON functions, the
 *     exact way; nothing is decided here that the exact way would decide otherwise.
 *   - counts: lines, blank lines (only spaces).
 * What DuckDB's readers treat at the level of the file (a byte that is not UTF-8, a NUL, a
 * bare carriage return, the CSV scanner's delimiter 0x1f, a line over 4 MiB, a byte-order
 * mark) raises Unsupported: the caller then reads the file with DuckDB alone.
 *
 * The GIL is released while a chunk is parsed, so chunks parse on several threads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 64
#define MAX_DEPTH 64
#define MAX_LINE (4 * 1024 * 1024)
#define MAX_UNKNOWN 256

static PyObject *Unsupported;

typedef struct {
    char *p;
    size_t len, cap;
} Buf;

static int buf_grow(Buf *b, size_t extra) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int buf_reserve(Buf *b, size_t extra) {
    return b->len + extra <= b->cap ? 0 : buf_grow(b, extra);
}

static inline int buf_put(Buf *b, const char *s, size_t n) {
    if (!n) return 0;
    if (buf_reserve(b, n)) return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

static inline int buf_putc(Buf *b, char c) {
    if (b->len == b->cap && buf_reserve(b, 1)) return -1;
    b->p[b->len++] = c;
    return 0;
}

static void buf_free(Buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* An Arrow string column: validity bitmap, int32 offsets, data. */
typedef struct {
    Buf valid, offsets, data;
    int64_t rows, nulls;
} Col;

static int col_init(Col *c) {
    memset(c, 0, sizeof(*c));
    int32_t zero = 0;
    return buf_put(&c->offsets, (const char *)&zero, 4);
}

/* End a row of the column: its data (written since the previous row) is the value. */
static inline int col_row(Col *c, int valid) {
    if ((c->rows & 7) == 0 && buf_putc(&c->valid, 0)) return -1;
    if (valid) c->valid.p[c->rows >> 3] |= (char)(1 << (c->rows & 7));
    else c->nulls++;
    if (c->data.len > INT32_MAX) return -1;
    int32_t off = (int32_t)c->data.len;
    if (buf_put(&c->offsets, (const char *)&off, 4)) return -1;
    c->rows++;
    return 0;
}

static inline int col_append(Col *c, const char *s, size_t n, int valid) {
    if (valid && buf_put(&c->data, s, n)) return -1;
    return col_row(c, valid);
}

static void col_free(Col *c) {
    buf_free(&c->valid);
    buf_free(&c->offsets);
    buf_free(&c->data);
}

/* ---- field lookup: open addressing over the field names ---- */
typedef struct {
    int n;
    const char *name[MAX_FIELDS];
    size_t len[MAX_FIELDS];
    int slot[256]; /* -1 empty, else field index */
} Fields;

/* Length and three bytes: enough to spread a few dozen field names over 256 slots (a clash
 * costs one more memcmp, never a wrong match). */
static inline uint32_t hash_bytes(const char *s, size_t n) {
    if (!n) return 0;
    return (uint32_t)n * 7u + (unsigned char)s[0] * 31u + (unsigned char)s[n - 1] * 131u
           + (unsigned char)s[n / 2];
}

static void fields_build(Fields *f) {
    for (int i = 0; i < 256; i++) f->slot[i] = -1;
    for (int i = 0; i < f->n; i++) {
        uint32_t h = hash_bytes(f->name[i], f->len[i]) & 255;
        while (f->slot[h] >= 0) h = (h + 1) & 255;
        f->slot[h] = i;
    }
}

static inline int fields_find(const Fields *f, const char *s, size_t n) {
    uint32_t h = hash_bytes(s, n) & 255;
    while (f->slot[h] >= 0) {
        int i = f->slot[h];
        if (f->len[i] == n && memcmp(f->name[i], s, n) == 0) return i;
        h = (h + 1) & 255;
    }
    return -1;
}

/* ---- the parser of one line ---- */
enum { OK = 0, ODD = 1, NOMEM = 2 };

typedef struct {
    const char *p, *e;
    Buf *out;
    int depth;
} P;

static inline void ws(P *s) {
    /* compact JSON has none: one test for the common case */
    if (s->p < s->e && (unsigned char)*s->p > ' ') return;
    while (s->p < s->e && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* The first byte of the 8 at p that is '"', a backslash or below 0x20 (8 if none). Bytes
 * above a true match may be flagged too (borrows): only the first one is used. */
static inline int special8(const char *p) {
    uint64_t w, q, b;
    memcpy(&w, p, 8);
    q = w ^ 0x2222222222222222ull;
    b = w ^ 0x5C5C5C5C5C5C5C5Cull;
    uint64_t m = ((q - 0x0101010101010101ull) & ~q) | ((b - 0x0101010101010101ull) & ~b)
                 | ((w - 0x2020202020202020ull) & ~w);
    m &= 0x8080808080808080ull;
    return m ? __builtin_ctzll(m) >> 3 : 8;
}

/* The end of the run of string bytes at p that needs no attention (no quote, backslash or
 * control character), eight bytes at a time. */
static inline const char *plain_end(const char *p, const char *e) {
    while (e - p >= 8) {
        int k = special8(p);
        p += k;
        if (k < 8) return p;
    }
    while (p < e && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) p++;
    return p;
}

static int hex4(const char *p, unsigned *v) {
    unsigned x = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        x <<= 4;
        if (c >= '0' && c <= '9') x |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') x |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') x |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *v = x;
    return 0;
}

static int put_utf8(Buf *b, unsigned c) {
    char t[4];
    size_t n;
    if (c < 0x80) { t[0] = (char)c; n = 1; }
    else if (c < 0x800) { t[0] = (char)(0xC0 | (c >> 6)); t[1] = (char)(0x80 | (c & 0x3F)); n = 2; }
    else if (c < 0x10000) {
        t[0] = (char)(0xE0 | (c >> 12)); t[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        t[2] = (char)(0x80 | (c & 0x3F)); n = 3;
    } else {
        t[0] = (char)(0xF0 | (c >> 18)); t[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        t[2] = (char)(0x80 | ((c >> 6) & 0x3F)); t[3] = (char)(0x80 | (c & 0x3F)); n = 4;
    }
    return buf_put(b, t, n);
}

/* A string at s->p (on the opening quote). raw: its value unescaped (a top-level VARCHAR
 * field); else its JSON text as DuckDB writes it back (inside an object, an array, extra).
 * Escapes whose written-back form is not certain make the line odd. */
static int string(P *s, int raw) {
    Buf *b = s->out;
    s->p++;
    if (!raw && buf_putc(b, '"')) return NOMEM;
    for (;;) {
        const char *q = plain_end(s->p, s->e);
        if (q > s->p && buf_put(b, s->p, (size_t)(q - s->p))) return NOMEM;
        s->p = q;
        if (q >= s->e) return ODD;
        if (*q == '"') {
            s->p++;
            if (!raw && buf_putc(b, '"')) return NOMEM;
            return OK;
        }
        if (*q != '\\') return ODD; /* a raw control character: not JSON */
        if (q + 1 >= s->e) return ODD;
        char c = q[1];
        s->p = q + 2;
        const char *same = NULL; /* an escape written back as itself */
        switch (c) {
        case '"': same = "\\\""; if (raw && buf_putc(b, '"')) return NOMEM; break;
        case '\\': same = "\\\\"; if (raw && buf_putc(b, '\\')) return NOMEM; break;
        case '/': if (buf_putc(b, '/')) return NOMEM; break;
        case 'n': same = "\\n"; if (raw && buf_putc(b, '\n')) return NOMEM; break;
        case 't': same = "\\t"; if (raw && buf_putc(b, '\t')) return NOMEM; break;
        case 'r': same = "\\r"; if (raw && buf_putc(b, '\r')) return NOMEM; break;
        case 'b': if (!raw) return ODD; if (buf_putc(b, '\b')) return NOMEM; break;
        case 'f': if (!raw) return ODD; if (buf_putc(b, '\f')) return NOMEM; break;
        case 'u': {
            unsigned u;
            if (s->e - s->p < 4 || hex4(s->p, &u)) return ODD;
            s->p += 4;
            if (u >= 0xD800 && u <= 0xDBFF) {
                unsigned lo;
                if (s->e - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || hex4(s->p + 2, &lo)
                    || lo < 0xDC00 || lo > 0xDFFF)
                    return ODD;
                s->p += 6;
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            } else if (u >= 0xDC00 && u <= 0xDFFF) {
                return ODD;
            }
            if (u == 0) return ODD;
            if (!raw && (u < 0x20 || u == 0x7F || u == '"' || u == '\\')) return ODD;
            if (put_utf8(b, u)) return NOMEM;
            break;
        }
        default:
            return ODD;
        }
        if (same && !raw && buf_put(b, same, strlen(same))) return NOMEM;
    }
}

/* The shortest digits that read back as the same double as the number text [a, q) (more
 * than 15 significant digits: a float printed with 16 or 17, as Python, JavaScript and Go
 * write 0.30000000000000004): the digits DuckDB's JSON functions write for that double.
 * 0 with d, *nd and *point (value = 0.d * 10^point) replaced; -1 when it cannot say. */
static int shortest(const char *a, const char *q, char *d, size_t *nd, long *point) {
    char text[64], out[40];
    size_t len = (size_t)(q - a);
    if (len >= sizeof(text)) return -1;
    memcpy(text, a, len);
    text[len] = 0;
    char *end;
    double v = strtod(text, &end);
    if (end != text + len || !isfinite(v) || v == 0) return -1;
    for (int prec = 15; prec <= 17; prec++) {
        int n = snprintf(out, sizeof(out), "%.*e", prec - 1, fabs(v));
        if (n <= 0 || (size_t)n >= sizeof(out) || strtod(out, NULL) != fabs(v)) continue;
        /* out: D.DDDDe[+-]XX */
        size_t k = 0;
        char *p = out;
        for (; *p && *p != 'e'; p++)
            if (*p >= '0' && *p <= '9') d[k++] = *p;
        if (*p != 'e') return -1;
        long e10 = strtol(p + 1, NULL, 10);
        while (k > 1 && d[k - 1] == '0') k--;
        *nd = k;
        *point = e10 + 1;
        return 0;
    }
    return -1;
}

/* A number as DuckDB's JSON functions render it (yyjson). An integer (no fraction, no
 * exponent) of at most 18 digits is written as it is (not -0). Any other number is a double,
 * written from its shortest digits: a number with at most 15 significant digits has those
 * digits (trailing zeros dropped) as its shortest form (more digits: the shortest form is
 * found, ``shortest``), so its rendering is known: fixed
 * notation with at least one decimal from 1e-6 up to 1e15 (2957.0, 0.000081 for 8.1e-05,
 * 1234.56 for 123.456e1), digits and exponent below (1.23e-7). Anything else (more digits,
 * 1e15 and above, -0, an exponent beyond the double's range) is odd: the exact way decides. */
static int number(P *s) {
    const char *a = s->p, *q = s->p;
    int neg = 0;
    if (q < s->e && *q == '-') { neg = 1; q++; }
    const char *ip = q;
    while (q < s->e && *q >= '0' && *q <= '9') q++;
    size_t ilen = (size_t)(q - ip);
    if (ilen == 0 || (ilen > 1 && *ip == '0')) return ODD;
    const char *fp = q;
    size_t flen = 0;
    if (q < s->e && *q == '.') {
        fp = ++q;
        while (q < s->e && *q >= '0' && *q <= '9') q++;
        flen = (size_t)(q - fp);
        if (flen == 0) return ODD;
    }
    int has_exp = 0;
    long ex = 0;
    if (q < s->e && (*q == 'e' || *q == 'E')) {
        has_exp = 1;
        q++;
        int eneg = 0;
        if (q < s->e && (*q == '+' || *q == '-')) eneg = *q++ == '-';
        const char *ep = q;
        while (q < s->e && *q >= '0' && *q <= '9' && q - ep < 4) ex = ex * 10 + (*q++ - '0');
        if (q == ep || (q < s->e && *q >= '0' && *q <= '9')) return ODD;
        if (eneg) ex = -ex;
    }
    if (!flen && !has_exp) {
        if (ilen > 18 || (neg && *ip == '0')) return ODD;
        s->p = q;
        return buf_put(s->out, a, (size_t)(q - a)) ? NOMEM : OK;
    }
    /* the significant digits of int part + fraction, and where the point falls in them */
    char d[40];
    size_t nd = 0, lead = 0;
    int started = 0;
    for (size_t i = 0; i < ilen + flen; i++) {
        char c = i < ilen ? ip[i] : fp[i - ilen];
        if (!started && c == '0') { lead++; continue; }
        started = 1;
        if (nd == sizeof(d)) return ODD;
        d[nd++] = c;
    }
    while (nd && d[nd - 1] == '0') nd--;
    s->p = q;
    if (nd == 0) { /* zero */
        if (neg) return ODD;
        return buf_put(s->out, "0.0", 3) ? NOMEM : OK;
    }
    long point = (long)ilen + ex - (long)lead; /* value = 0.d * 10^point */
    if (nd > 15 && shortest(a, q, d, &nd, &point)) return ODD;
    char t[64];
    size_t n = 0;
    if (neg) t[n++] = '-';
    if (point >= 1) {
        if (point > 15) return ODD;
        for (long i = 0; i < point; i++) t[n++] = i < (long)nd ? d[i] : '0';
        t[n++] = '.';
        if ((long)nd > point) {
            memcpy(t + n, d + point, nd - (size_t)point);
            n += nd - (size_t)point;
        } else {
            t[n++] = '0';
        }
    } else if (point >= -5) {
        t[n++] = '0';
        t[n++] = '.';
        for (long i = 0; i < -point; i++) t[n++] = '0';
        memcpy(t + n, d, nd);
        n += nd;
    } else {
        if (1 - point > 307) return ODD;
        t[n++] = d[0];
        if (nd > 1) {
            t[n++] = '.';
            memcpy(t + n, d + 1, nd - 1);
            n += nd - 1;
        }
        n += (size_t)snprintf(t + n, sizeof(t) - n, "e-%ld", 1 - point);
    }
    return buf_put(s->out, t, n) ? NOMEM : OK;
}

static int literal(P *s, const char *word, size_t n) {
    if ((size_t)(s->e - s->p) < n || memcmp(s->p, word, n) != 0) return ODD;
    s->p += n;
    return buf_put(s->out, word, n) ? NOMEM : OK;
}

/* Any JSON value, written back as DuckDB writes it (minified). */
static int value(P *s) {
    if (s->p >= s->e) return ODD;
    char c = *s->p;
    int r;
    if (c == '"') return string(s, 0);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        if (++s->depth > MAX_DEPTH) return ODD;
        if (buf_putc(s->out, c)) return NOMEM;
        s->p++;
        ws(s);
        if (s->p < s->e && *s->p == close) {
            s->p++;
            s->depth--;
            return buf_putc(s->out, close) ? NOMEM : OK;
        }
        for (;;) {
            if (c == '{') {
                if (s->p >= s->e || *s->p != '"') return ODD;
                if ((r = string(s, 0))) return r;
                ws(s);
                if (s->p >= s->e || *s->p != ':') return ODD;
                s->p++;
                ws(s);
                if (buf_putc(s->out, ':')) return NOMEM;
            }
            if ((r = value(s))) return r;
            ws(s);
            if (s->p >= s->e) return ODD;
            if (*s->p == ',') {
                s->p++;
                ws(s);
                if (buf_putc(s->out, ',')) return NOMEM;
                continue;
            }
            if (*s->p != close) return ODD;
            s->p++;
            s->depth--;
            return buf_putc(s->out, close) ? NOMEM : OK;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) return number(s);
    if (c == 't') return literal(s, "true", 4);
    if (c == 'f') return literal(s, "false", 5);
    if (c == 'n') return literal(s, "null", 4);
    return ODD;
}

typedef struct {
    size_t mark[MAX_FIELDS + 1]; /* each column's data length before the line */
    char set[MAX_FIELDS];        /* the key was seen */
    char isnull[MAX_FIELDS];     /* ... with the value null */
    const char *ukey[MAX_UNKNOWN];
    size_t ulen[MAX_UNKNOWN];
    int nunknown;
} Rec;

/* One line (no line end), its values written straight into the columns' data (fields
 * 0..n-1, then extra at n); OK, ODD or NOMEM. On ODD the caller rolls the data back. */
static int record(const Fields *f, const char *a, const char *e, Col *cols, Rec *r) {
    P s = {a, e, NULL, 0};
    int rc;
    Buf *extra = &cols[f->n].data;
    size_t extra0 = r->mark[f->n];
    memset(r->set, 0, (size_t)f->n);
    r->nunknown = 0;
    ws(&s);
    if (s.p >= s.e || *s.p != '{') return ODD;
    s.p++;
    ws(&s);
    if (s.p < s.e && *s.p == '}') return ODD; /* an empty object: the exact way decides */
    for (;;) {
        if (s.p >= s.e || *s.p != '"') return ODD;
        const char *k = ++s.p;
        s.p = plain_end(s.p, s.e);
        if (s.p >= s.e || *s.p != '"') return ODD; /* an escaped key: the exact way */
        size_t klen = (size_t)(s.p - k);
        s.p++;
        ws(&s);
        if (s.p >= s.e || *s.p != ':') return ODD;
        s.p++;
        ws(&s);
        if (s.p >= s.e) return ODD;
        int i = fields_find(f, k, klen);
        if (i >= 0) {
            if (r->set[i]) return ODD;
            r->set[i] = 1;
            r->isnull[i] = 0;
            s.out = &cols[i].data;
            if (*s.p == '"') {
                rc = string(&s, 1);
            } else if (*s.p == 'n') {
                if ((size_t)(s.e - s.p) < 4 || memcmp(s.p, "null", 4) != 0) return ODD;
                s.p += 4;
                r->isnull[i] = 1;
                rc = OK;
            } else {
                rc = value(&s);
            }
            if (rc) return rc;
        } else {
            for (int j = 0; j < r->nunknown; j++)
                if (r->ulen[j] == klen && memcmp(r->ukey[j], k, klen) == 0) return ODD;
            if (r->nunknown == MAX_UNKNOWN) return ODD;
            r->ukey[r->nunknown] = k;
            r->ulen[r->nunknown++] = klen;
            s.out = extra;
            if (buf_putc(extra, extra->len > extra0 ? ',' : '{') || buf_putc(extra, '"')
                || buf_put(extra, k, klen) || buf_put(extra, "\":", 2))
                return NOMEM;
            if ((rc = value(&s))) return rc;
        }
        ws(&s);
        if (s.p >= s.e) return ODD;
        if (*s.p == ',') {
            s.p++;
            ws(&s);
            continue;
        }
        if (*s.p != '}') return ODD;
        s.p++;
        break;
    }
    ws(&s);
    if (s.p != s.e) return ODD;
    if (extra->len > extra0 && buf_putc(extra, '}')) return NOMEM;
    return OK;
}

/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF). */
static int utf8_ok(const unsigned char *p, const unsigned char *e) {
    while (p < e) {
        if (e - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (!(w & 0x8080808080808080ull)) { p += 8; continue; }
        }
        unsigned char c = *p;
        if (c < 0x80) { p++; continue; }
        int n;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
        else return 0;
        if (e - p <= n) return 0;
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        p += n + 1;
    }
    return 1;
}

typedef struct {
    Col *cols; /* nfields + 1 (extra) */
    Buf lines; /* int64 line index of each record */
    Buf odd_lines;
    Col odd;
    int64_t nlines, nblank;
    const char *unsupported;
    int64_t unsupported_line;
} Out;

static int scan_chunk(const Fields *f, const char *buf, size_t size, Out *o) {
    Rec *r = calloc(1, sizeof(Rec));
    int rc = 0;
    if (!r) return -1;
    const char *p = buf, *end = buf + size;
    int64_t line = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        const char *next = nl ? nl + 1 : end;
        if (e > p && e[-1] == '\r') e--;
        size_t n = (size_t)(e - p);
        if (n > MAX_LINE) { o->unsupported = "a line longer than 4 MiB"; goto stop; }
        if (memchr(p, '\r', n)) { o->unsupported = "a carriage return inside a line"; goto stop; }
        if (memchr(p, 0x1f, n)) { o->unsupported = "a 0x1f byte"; goto stop; }
        if (memchr(p, 0, n)) { o->unsupported = "a NUL byte"; goto stop; }
        if (!utf8_ok((const unsigned char *)p, (const unsigned char *)e)) {
            o->unsupported = "text that is not UTF-8";
            goto stop;
        }
        const char *q = p;
        while (q < e && *q == ' ') q++;
        if (q == e) {
            o->nblank++;
        } else {
            for (int i = 0; i <= f->n; i++) r->mark[i] = o->cols[i].data.len;
            int st = record(f, p, e, o->cols, r);
            if (st == NOMEM) { rc = -1; goto done; }
            if (st == ODD) {
                for (int i = 0; i <= f->n; i++) o->cols[i].data.len = r->mark[i];
                if (buf_put(&o->odd_lines, (const char *)&line, 8) || col_append(&o->odd, p, n, 1)) {
                    rc = -1;
                    goto done;
                }
            } else {
                for (int i = 0; i < f->n; i++) {
                    if (col_row(&o->cols[i], r->set[i] && !r->isnull[i])) {
                        rc = -1;
                        goto done;
                    }
                }
                if (col_row(&o->cols[f->n], o->cols[f->n].data.len > r->mark[f->n])
                    || buf_put(&o->lines, (const char *)&line, 8)) {
                    rc = -1;
                    goto done;
                }
            }
        }
        line++;
        p = next;
    }
    goto done;
stop:
    o->unsupported_line = line;
done:
    o->nlines = line;
    free(r);
    return rc;
}

/* A copy of the buffer as bytes. (Handing the buffer itself to Arrow saves the copy but
 * measured 0.6 s more system time per 1M lines: the memory then comes back too late to be
 * reused, and every chunk faults in fresh pages.) */
static PyObject *bytes_of(Buf *b) {
    return PyBytes_FromStringAndSize(b->p ? b->p : "", (Py_ssize_t)b->len);
}

static PyObject *col_tuple(Col *c) {
    /* (rows, nulls, validity bytes, offsets bytes, data bytes) */
    return Py_BuildValue("(LLNNN)", (long long)c->rows, (long long)c->nulls, bytes_of(&c->valid),
                         bytes_of(&c->offsets), bytes_of(&c->data));
}

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer view;
    PyObject *names;
    if (!PyArg_ParseTuple(args, "y*O!", &view, &PyTuple_Type, &names)) return NULL;
    Fields f;
    f.n = (int)PyTuple_GET_SIZE(names);
    if (f.n > MAX_FIELDS) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "too many fields");
        return NULL;
    }
    for (int i = 0; i < f.n; i++) {
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(names, i), &len);
        if (!s) { PyBuffer_Release(&view); return NULL; }
        f.name[i] = s;
        f.len[i] = (size_t)len;
    }
    fields_build(&f);
    Out o;
    memset(&o, 0, sizeof(o));
    o.cols = calloc((size_t)f.n + 1, sizeof(Col));
    int rc = o.cols ? 0 : -1;
    for (int i = 0; rc == 0 && i <= f.n; i++) rc = col_init(&o.cols[i]);
    if (rc == 0) rc = col_init(&o.odd);
    if (rc == 0) {
        Py_BEGIN_ALLOW_THREADS
        rc = scan_chunk(&f, (const char *)view.buf, (size_t)view.len, &o);
        Py_END_ALLOW_THREADS
    }
    Py_ssize_t size = view.len;
    PyBuffer_Release(&view);
    PyObject *result = NULL;
    if (rc) {
        PyErr_NoMemory();
    } else if (o.unsupported) {
        PyObject *exc = Py_BuildValue("(sL)", o.unsupported, (long long)o.unsupported_line);
        if (exc) {
            PyErr_SetObject(Unsupported, exc);
            Py_DECREF(exc);
        }
    } else {
        PyObject *cols = PyList_New(f.n + 1);
        for (int i = 0; cols && i <= f.n; i++) PyList_SET_ITEM(cols, i, col_tuple(&o.cols[i]));
        if (cols)
            result = Py_BuildValue("{s:n,s:L,s:L,s:N,s:N,s:N,s:N}", "bytes", size,
                                   "lines", (long long)o.nlines,
                                   "blank", (long long)o.nblank, "line_index", bytes_of(&o.lines),
                                   "columns", cols, "odd_index", bytes_of(&o.odd_lines),
                                   "odd", col_tuple(&o.odd));
    }
    if (o.cols)
        for (int i = 0; i <= f.n; i++) col_free(&o.cols[i]);
    free(o.cols);
    col_free(&o.odd);
    buf_free(&o.lines);
    buf_free(&o.odd_lines);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(buffer, fields) -> dict: one chunk of JSON lines parsed once (see the module)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_jsonl", NULL, -1, methods};

#ifndef SOURCE_SHA256
#define SOURCE_SHA256 "unknown"
#endif

PyMODINIT_FUNC PyInit__jsonl(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    /* the hash of this file when built (jsonl_build.py): a stale library is not used */
    if (PyModule_AddStringConstant(m, "source_sha256", SOURCE_SHA256)) {
        Py_DECREF(m);
        return NULL;
    }
    Unsupported = PyErr_NewException("_jsonl.Unsupported", PyExc_ValueError, NULL);
    if (!Unsupported || PyModule_AddObject(m, "Unsupported", Unsupported)) {
        Py_XDECREF(Unsupported);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(Unsupported);
    return m;
}
