/* The common request and response heads in one call each.
 *
 * httptools hands a head over one Python callback per header (and a few more per message),
 * each about 2,000 instructions of call machinery: over a third of what vhostd spent per
 * small request. Nearly every head is simple: whole in one read, no obs-fold, a Connection
 * header that names nothing; a response with a status from 200 to 599 and a
 * Content-Length or chunked framing, a request without a body or with a Content-Length.
 * scan_response() and scan_request() read such a head in one pass and return what the
 * proxy needs from it, the headers it forwards already joined; for anything else they
 * return None and the caller parses with httptools (upstream.py, client.py). They accept
 * only heads that llhttp reads the same way (tests/proxy/test_headscan.py compares the
 * two).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_KEPT 100 /* more header lines than this: httptools' business */
#define MAX_LENGTH_DIGITS 18 /* fits an int64 */

/* tchar (RFC 9110 5.6.2): the bytes of a header name */
static unsigned char token_byte[256];
/* field-vchar / SP / HTAB / obs-text: the bytes of a header value and of a reason phrase */
static unsigned char value_byte[256];

static void init_tables(void) {
    const char *extra = "!#$%&'*+-.^_`|~";
    for (int c = '0'; c <= '9'; c++) token_byte[c] = 1;
    for (int c = 'a'; c <= 'z'; c++) token_byte[c] = 1;
    for (int c = 'A'; c <= 'Z'; c++) token_byte[c] = 1;
    for (const char *p = extra; *p; p++) token_byte[(unsigned char)*p] = 1;
    value_byte['\t'] = 1;
    for (int c = 0x20; c <= 0x7e; c++) value_byte[c] = 1;
    for (int c = 0x80; c <= 0xff; c++) value_byte[c] = 1;
}

/* What a header is to the proxy; the names mirror RESPONSE_RULES and REQUEST_RULES in
 * headers.py (tests/proxy/test_headscan.py compares them). SLOW: a header whose handling
 * is left to httptools and the Python side (bodies, upgrades, forwarding chains). */
enum kind { KEEP, DROP, LENGTH, CHUNKED, CONNECTION, HOST, AUTH, FORWARDING, SLOW };

struct rule {
    const char *name;
    size_t len;
    enum kind kind;
};

static const struct rule response_rules[] = {
    {"keep-alive", 10, DROP},
    {"te", 2, DROP},
    {"trailer", 7, DROP},
    {"proxy-connection", 16, CONNECTION}, /* llhttp reads its options as Connection's */
    {"proxy", 5, DROP},
    {"connection", 10, CONNECTION},
    {"upgrade", 7, DROP}, /* only a 101 keeps it, and a 101 is never scanned here */
    {"content-length", 14, LENGTH},
    {"transfer-encoding", 17, CHUNKED},
};

static const struct rule request_rules[] = {
    {"keep-alive", 10, DROP},
    {"te", 2, DROP},
    {"trailer", 7, DROP},
    {"proxy-connection", 16, CONNECTION},
    {"proxy", 5, DROP},
    {"connection", 10, CONNECTION},
    {"upgrade", 7, SLOW},
    {"content-length", 14, LENGTH}, /* a body: counted down by the caller */
    {"transfer-encoding", 17, SLOW},
    {"host", 4, HOST},
    {"authorization", 13, AUTH},
    {"expect", 6, SLOW},
    /* a client's own forwarding headers: dropped, unless it is a trusted proxy */
    {"x-forwarded-for", 15, FORWARDING},
    {"x-forwarded-proto", 17, FORWARDING},
    {"x-forwarded-host", 16, FORWARDING},
    {"x-forwarded-port", 16, FORWARDING},
    {"x-real-ip", 9, FORWARDING},
    {"forwarded", 9, FORWARDING},
};
#define COUNT(rules) (sizeof(rules) / sizeof(rules[0]))

/* A rule set with its rules listed by name length (built by index_rules), so that a header
 * is compared only with the names as long as its own. */
#define MAX_RULE_LEN 17
#define MAX_SAME_LEN 4 /* rules of one length, at most (request: 3 of 16) */
struct rule_set {
    const struct rule *rules;
    unsigned char of_len[MAX_RULE_LEN + 1][MAX_SAME_LEN];
    unsigned char count_of_len[MAX_RULE_LEN + 1];
};
static struct rule_set response_set, request_set;

static int index_rules(struct rule_set *set, const struct rule *rules, size_t count) {
    set->rules = rules;
    memset(set->count_of_len, 0, sizeof(set->count_of_len));
    for (size_t i = 0; i < count; i++) {
        size_t len = rules[i].len;
        if (len > MAX_RULE_LEN || set->count_of_len[len] == MAX_SAME_LEN) return -1;
        set->of_len[len][set->count_of_len[len]++] = (unsigned char)i;
    }
    return 0;
}

static uint64_t load8(const char *p) {
    uint64_t word;
    memcpy(&word, p, 8);
    return word;
}

/* Header names compare ASCII-only: strncasecmp follows the locale, and under a Turkish one
 * "TRANSFER-ENCODING" would not match "transfer-encoding" (a smuggled request). `lower` is
 * made of a-z and '-': a byte ORed with 0x20 equals one of those only if it is that letter
 * in either case, or '-' or CR (never in a name or value), as llhttp's LOWER() compares.
 * From 8 bytes on, 8 at a time, the last 8 overlapping the word before them. */
#define FOLD8 0x2020202020202020ULL
static int same_name(const char *lower, const char *name, size_t len) {
    if (len >= 8) {
        for (size_t i = 0; i + 8 < len; i += 8) {
            if ((load8(name + i) | FOLD8) != load8(lower + i)) return 0;
        }
        return (load8(name + len - 8) | FOLD8) == load8(lower + len - 8);
    }
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)name[i] | 0x20) != (unsigned char)lower[i]) return 0;
    }
    return 1;
}

static enum kind classify(const struct rule_set *set, const char *name, size_t len) {
    if (len > MAX_RULE_LEN) return KEEP;
    for (unsigned char i = 0; i < set->count_of_len[len]; i++) {
        const struct rule *rule = &set->rules[set->of_len[len][i]];
        if (same_name(rule->name, name, len)) return rule->kind;
    }
    return KEEP;
}

/* The end of the run of header-name bytes (tchar) that starts at p: nearly every name is
 * letters, digits and '-', found 16 at a time where SSE2 is there; the table goes on from
 * the first other byte (usually the colon). */
static const char *name_run(const char *p, const char *end) {
#if defined(__SSE2__)
    const __m128i fold = _mm_set1_epi8(0x20), a = _mm_set1_epi8('a'), zero_char = _mm_set1_epi8('0');
    const __m128i last_letter = _mm_set1_epi8(25), last_digit = _mm_set1_epi8(9);
    const __m128i dash = _mm_set1_epi8('-');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        /* unsigned x <= n as min(x, n) == x */
        __m128i letter = _mm_sub_epi8(_mm_or_si128(v, fold), a);
        __m128i digit = _mm_sub_epi8(v, zero_char);
        __m128i common = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(letter, last_letter), letter),
                         _mm_cmpeq_epi8(_mm_min_epu8(digit, last_digit), digit)),
            _mm_cmpeq_epi8(v, dash));
        unsigned other = ~(unsigned)_mm_movemask_epi8(common) & 0xffffu;
        if (other) {
            p += __builtin_ctz(other);
            break;
        }
        p += 16;
    }
#endif
    while (p < end && token_byte[(unsigned char)*p]) p++;
    return p;
}

/* The end of the run of value bytes (field-vchar, SP, HTAB, obs-text) that starts at p:
 * values are most of a head's bytes, so 16 at a time where SSE2 is there. */
static const char *value_run(const char *p, const char *end) {
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128(), space = _mm_set1_epi8(0x20);
    const __m128i tab = _mm_set1_epi8(0x09), del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        /* signed, obs-text is below zero: a control byte is one from 0 to 0x1f */
        __m128i control = _mm_andnot_si128(_mm_cmplt_epi8(v, zero), _mm_cmplt_epi8(v, space));
        __m128i bad = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(v, tab), control),
                                   _mm_cmpeq_epi8(v, del));
        int mask = _mm_movemask_epi8(bad);
        if (mask) return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
#endif
    while (p < end && value_byte[(unsigned char)*p]) p++;
    return p;
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

static int token_is(const char *token, size_t len, const char *word) {
    return strlen(word) == len && same_name(word, token, len);
}

/* Connection tokens: 1 close, 2 keep-alive, OR-ed; -1 for a token naming another header
 * (those headers must then be dropped too: left to the slow path). */
static int connection_options(const char *p, const char *end) {
    int options = 0;
    while (p < end) {
        while (p < end && (is_ows(*p) || *p == ',')) p++;
        const char *start = p;
        while (p < end && *p != ',' && !is_ows(*p)) p++;
        size_t len = (size_t)(p - start);
        if (len == 0) break;
        if (token_is(start, len, "close"))
            options |= 1;
        else if (token_is(start, len, "keep-alive"))
            options |= 2;
        else if (!token_is(start, len, "upgrade"))
            return -1;
        while (p < end && is_ows(*p)) p++;
        if (p < end && *p != ',') return -1; /* "keep alive": not one token */
    }
    return options;
}

/* as llhttp_should_keep_alive() decides it, for a message with known framing */
static int keeps_alive(int minor, int options) {
    return minor == 1 ? !(options & 1) : (options & 2) != 0;
}

/* One header line. */
struct header {
    const char *line, *value, *value_end; /* value without surrounding whitespace */
    const char *raw_end;                  /* where the value ends before its CRLF */
    size_t name_len;
};

/* Read the header line at *pp: 1 one read (*pp past its CRLF), 0 the blank line that ends
 * the head (consumed), -1 anything else: incomplete, obs-fold, bare LF, a bad byte. */
static int next_header(const char **pp, const char *end, struct header *h) {
    const char *p = *pp;
    if (end - p < 2) return -1;
    if (p[0] == '\r') {
        if (p[1] != '\n') return -1;
        *pp = p + 2;
        return 0;
    }
    h->line = p;
    p = name_run(p, end);
    h->name_len = (size_t)(p - h->line);
    if (h->name_len == 0 || p == end || *p != ':') return -1;
    p++;
    while (p < end && is_ows(*p)) p++;
    h->value = p;
    p = value_run(p, end);
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n') return -1;
    h->raw_end = p;
    const char *value_end = p;
    while (value_end > h->value && is_ows(value_end[-1])) value_end--;
    h->value_end = value_end;
    *pp = p + 2;
    return 1;
}

/* Byte ranges joined into one bytes object: the header lines that are forwarded. */
struct spans {
    const char *at[MAX_KEPT][2];
    int count;
    Py_ssize_t size;
};

static int spans_add(struct spans *s, const char *start, const char *stop) {
    if (s->count && s->at[s->count - 1][1] == start) {
        s->at[s->count - 1][1] = stop; /* adjacent lines: one copy */
    } else {
        if (s->count == MAX_KEPT) return -1;
        s->at[s->count][0] = start;
        s->at[s->count][1] = stop;
        s->count++;
    }
    s->size += stop - start;
    return 0;
}

static PyObject *spans_join(const struct spans *s) {
    PyObject *joined = PyBytes_FromStringAndSize(NULL, s->size);
    if (joined == NULL) return NULL;
    char *out = PyBytes_AS_STRING(joined);
    for (int i = 0; i < s->count; i++) {
        memcpy(out, s->at[i][0], (size_t)(s->at[i][1] - s->at[i][0]));
        out += s->at[i][1] - s->at[i][0];
    }
    return joined;
}

/* Reading a head's header lines: the part both scanners share. */
struct head_reader {
    const char *p, *end;
    const struct rule_set *rules;
    struct spans kept; /* the lines forwarded as they are */
    int options;       /* Connection options seen (see connection_options) */
    long lines;
};

static void head_reader_init(struct head_reader *r, const char *p, const char *end,
                             const struct rule_set *rules) {
    r->p = p;
    r->end = end;
    r->rules = rules;
    r->kept.count = 0; /* (not an initializer: that would zero all of kept.at per call) */
    r->kept.size = 0;
    r->options = 0;
    r->lines = 0;
}

/* The next header line of a kind the caller handles itself (LENGTH, HOST, AUTH...), in *h
 * and *kind: 1; the end of the head: 0; not simple: -1. On the way, lines to forward are
 * kept, Connection options gathered and hop-by-hop lines dropped. */
static int next_special(struct head_reader *r, struct header *h, enum kind *kind) {
    int more;
    while ((more = next_header(&r->p, r->end, h)) == 1) {
        r->lines++;
        *kind = classify(r->rules, h->line, h->name_len);
        if (*kind == KEEP) {
            if (spans_add(&r->kept, h->line, r->p) < 0) return -1;
        } else if (*kind == CONNECTION) {
            int these = connection_options(h->value, h->value_end);
            if (these < 0) return -1;
            r->options |= these;
        } else if (*kind != DROP) {
            return 1;
        }
    }
    return more;
}

/* A Content-Length value: 1 to MAX_LENGTH_DIGITS digits and nothing else (leading zeros
 * too, as llhttp takes them); -1 for anything else. */
static long long length_value(const struct header *h) {
    size_t len = (size_t)(h->value_end - h->value);
    if (len == 0 || len > MAX_LENGTH_DIGITS) return -1;
    long long length = 0;
    for (size_t i = 0; i < len; i++) {
        if (h->value[i] < '0' || h->value[i] > '9') return -1;
        length = length * 10 + (h->value[i] - '0');
    }
    return length;
}

static int only_spaces(const char *p, const char *end) {
    for (; p < end; p++) {
        if (*p != ' ') return 0;
    }
    return 1;
}

static PyObject *bytes_or_none(const char *start, const char *stop) {
    return start == NULL ? Py_NewRef(Py_None) : PyBytes_FromStringAndSize(start, stop - start);
}

/* Fill a new tuple from `items` (references stolen; on a NULL among them, all released). */
static PyObject *tuple_of(PyObject **items, Py_ssize_t count) {
    PyObject *tuple = NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (items[i] == NULL) goto fail;
    }
    if ((tuple = PyTuple_New(count)) == NULL) goto fail;
    for (Py_ssize_t i = 0; i < count; i++) PyTuple_SET_ITEM(tuple, i, items[i]);
    return tuple;
fail:
    for (Py_ssize_t i = 0; i < count; i++) Py_XDECREF(items[i]);
    return NULL;
}

/* The status line the client gets: always HTTP/1.1, the backend's code and reason. */
static PyObject *status_line(const char *code, const char *reason, const char *reason_end) {
    Py_ssize_t reason_len = reason_end - reason;
    PyObject *line = PyBytes_FromStringAndSize(NULL, 13 + reason_len + 2);
    if (line == NULL) return NULL;
    char *out = PyBytes_AS_STRING(line);
    memcpy(out, "HTTP/1.1 ", 9);
    memcpy(out + 9, code, 3);
    out[12] = ' ';
    memcpy(out + 13, reason, (size_t)reason_len);
    memcpy(out + 13 + reason_len, "\r\n", 2);
    return line;
}

/* The Content-Length line the client gets, with the backend's digits; None: no length. */
static PyObject *length_line(const char *digits, const char *digits_end) {
    if (digits == NULL) Py_RETURN_NONE;
    Py_ssize_t len = digits_end - digits;
    PyObject *line = PyBytes_FromStringAndSize(NULL, 16 + len + 2);
    if (line == NULL) return NULL;
    char *out = PyBytes_AS_STRING(line);
    memcpy(out, "Content-Length: ", 16);
    memcpy(out + 16, digits, (size_t)len);
    memcpy(out + 16 + len, "\r\n", 2);
    return line;
}

/* scan_response(data) -> (head_end, status, keep_alive, length, length_line, status_line,
 *                         forwarded_headers, chunked) | None
 * A head with a Content-Length (length -1: none), or "Transfer-Encoding: chunked" (its body
 * is read by _chunks.c), or a 204 or 304. */
static PyObject *scan_response(PyObject *module, PyObject *data) {
    char *buf;
    Py_ssize_t size;
    if (PyBytes_AsStringAndSize(data, &buf, &size) < 0) return NULL;
    const char *p = buf, *end = buf + size;

    /* status line: HTTP/1.x SP 3DIGIT [SP reason] CRLF */
    if (size < 14 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
        Py_RETURN_NONE;
    int minor = p[7] - '0';
    if (p[9] < '2' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
        Py_RETURN_NONE; /* 1xx (interim, 101) and anything odd: httptools */
    long status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    p += 12;
    const char *reason = p, *reason_end = p;
    if (*p == ' ') {
        reason = ++p;
        p = value_run(p, end);
        reason_end = p;
    }
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n') Py_RETURN_NONE;
    p += 2;

    struct head_reader r;
    head_reader_init(&r, p, end, &response_set);
    struct header h;
    enum kind kind;
    long long length = -1;
    const char *digits = NULL, *digits_end = NULL;
    int more, chunked = 0;
    while ((more = next_special(&r, &h, &kind)) == 1) {
        if (kind == CHUNKED) {
            /* one "Transfer-Encoding: chunked" in HTTP/1.1; any other coding, a list, a tab
             * around it (llhttp then reads no chunked framing) or chunked in HTTP/1.0 is
             * left to httptools */
            size_t len = (size_t)(h.value_end - h.value);
            if (chunked || minor != 1 || !token_is(h.value, len, "chunked") ||
                !only_spaces(h.line + h.name_len + 1, h.value) ||
                !only_spaces(h.value_end, h.raw_end))
                Py_RETURN_NONE;
            chunked = 1;
            continue;
        }
        if (kind != LENGTH || digits != NULL || (length = length_value(&h)) < 0) Py_RETURN_NONE;
        digits = h.value;
        digits_end = h.value_end;
    }
    if (more < 0 || (chunked && digits != NULL)) Py_RETURN_NONE;
    /* without a length the body runs until the backend closes: httptools' business */
    if (digits == NULL && !chunked && status != 204 && status != 304) Py_RETURN_NONE;

    PyObject *items[8] = {
        PyLong_FromSsize_t(r.p - buf),
        PyLong_FromLong(status),
        Py_NewRef(keeps_alive(minor, r.options) ? Py_True : Py_False),
        PyLong_FromLongLong(length),
        length_line(digits, digits_end),
        status_line(buf + 9, reason, reason_end),
        spans_join(&r.kept),
        Py_NewRef(chunked ? Py_True : Py_False),
    };
    return tuple_of(items, 8);
}

/* The bytes of an origin-form request target we take without asking llhttp: RFC 3986's
 * pchar, "/", "?" and "%", and what browsers leave unescaped in a query (PHP's a[]=1,
 * {json}, a|b) and llhttp accepts; anything else, "#" and controls included, goes to
 * httptools. */
static unsigned char target_byte[256];
/* The bytes of a Host value that a route may be looked up by (request.py's _HOST) */
static unsigned char host_byte[256];
#define MAX_HOST 1024

/* Whether a Host value is one request.valid_host() takes: then the Python side does not
 * check it again; any other is left to it (and refused there with a 400). */
static int valid_host(const char *p, const char *end) {
    if (end - p < 1 || end - p > MAX_HOST) return 0;
    for (; p < end; p++) {
        if (!host_byte[(unsigned char)*p]) return 0;
    }
    return 1;
}

/* The methods taken here (any other goes to httptools), each name made once. */
static struct {
    const char *name;
    size_t len;
    PyObject *object;
} known_methods[] = {
    {"GET", 3, NULL},   {"HEAD", 4, NULL},  {"POST", 4, NULL},   {"PUT", 3, NULL},
    {"PATCH", 5, NULL}, {"DELETE", 6, NULL}, {"OPTIONS", 7, NULL}, /* CORS preflights */
};

static PyObject *VERSION_1_0, *VERSION_1_1;

/* scan_request(data, start, max_headers, max_head_size, trusted)
 *   -> (head_end, method, target, version, keep_alive, host, authorization, forwarded_headers,
 *       header_count, content_length) | None
 * A request of a method above without Transfer-Encoding, Upgrade or Expect, whose whole head
 * is in `data` from `start`, with or without a Content-Length (-1: none; the body is the
 * next content_length bytes, in `data` and, what is not, in the reads that follow);
 * anything else is None: feed it to httptools. X-Forwarded-* and the like are dropped
 * from an untrusted client (the proxy sets its own); a trusted proxy's are extended by
 * the slow path. A host returned is a valid one (valid_host). */
static PyObject *scan_request(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "scan_request takes 5 arguments");
        return NULL;
    }
    char *buf;
    Py_ssize_t size;
    if (PyBytes_AsStringAndSize(args[0], &buf, &size) < 0) return NULL;
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) return NULL;
    long max_headers = PyLong_AsLong(args[2]);
    if (max_headers == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t max_head = PyLong_AsSsize_t(args[3]);
    if (max_head == -1 && PyErr_Occurred()) return NULL;
    int trusted = PyObject_IsTrue(args[4]);
    if (trusted < 0) return NULL;
    if (start < 0 || start > size || max_head < 0) Py_RETURN_NONE;
    const char *p = buf + start;
    /* a head longer than the limit is refused by the slow path, with its status */
    const char *end = size - start > max_head ? p + max_head : buf + size;

    PyObject *method = NULL;
    for (size_t i = 0; i < COUNT(known_methods); i++) {
        size_t len = known_methods[i].len;
        if ((size_t)(end - p) > len && p[len] == ' ' &&
            memcmp(p, known_methods[i].name, len) == 0) {
            method = known_methods[i].object;
            p += len + 1;
            break;
        }
    }
    if (method == NULL) Py_RETURN_NONE;
    const char *target = p;
    if (p == end || *p != '/') Py_RETURN_NONE;
    while (p < end && target_byte[(unsigned char)*p]) p++;
    const char *target_end = p;
    if (end - p < 11 || memcmp(p, " HTTP/1.", 8) != 0 || (p[8] != '0' && p[8] != '1') ||
        p[9] != '\r' || p[10] != '\n')
        Py_RETURN_NONE;
    int minor = p[8] - '0';
    p += 11;

    struct head_reader r;
    head_reader_init(&r, p, end, &request_set);
    struct header h;
    enum kind kind;
    const char *host = NULL, *host_end = NULL, *auth = NULL, *auth_end = NULL;
    long long length = -1;
    int more;
    while ((more = next_special(&r, &h, &kind)) == 1) {
        /* httptools keeps trailing whitespace in a value (in a Host: refused, not a host) */
        if (h.value_end != h.raw_end) Py_RETURN_NONE;
        if (kind == HOST && host == NULL) {
            /* forwarded as "Host: value", whatever its case and spacing */
            host = h.value;
            host_end = h.value_end;
            if (!valid_host(host, host_end)) Py_RETURN_NONE;
            if (spans_add(&r.kept, "Host: ", "Host: " + 6) < 0 ||
                spans_add(&r.kept, host, host_end) < 0 ||
                spans_add(&r.kept, "\r\n", "\r\n" + 2) < 0)
                Py_RETURN_NONE;
        } else if (kind == AUTH && auth == NULL) {
            /* held apart: the gate decides whether it goes on */
            auth = h.value;
            auth_end = h.value_end;
        } else if (kind == FORWARDING && !trusted) {
            continue; /* not kept */
        } else if (kind == LENGTH && length < 0) {
            if ((length = length_value(&h)) < 0) Py_RETURN_NONE;
        } else { /* a second Host or Authorization, or a SLOW header */
            Py_RETURN_NONE;
        }
    }
    if (more < 0 || r.lines > max_headers) Py_RETURN_NONE;
    Py_ssize_t head_end = r.p - buf;

    PyObject *items[10] = {
        PyLong_FromSsize_t(head_end),
        Py_NewRef(method),
        PyBytes_FromStringAndSize(target, target_end - target),
        Py_NewRef(minor ? VERSION_1_1 : VERSION_1_0),
        Py_NewRef(keeps_alive(minor, r.options) ? Py_True : Py_False),
        bytes_or_none(host, host_end),
        bytes_or_none(auth, auth_end),
        spans_join(&r.kept),
        PyLong_FromLong(r.lines),
        PyLong_FromLongLong(length),
    };
    return tuple_of(items, 10);
}

static PyObject *names_of(const struct rule *rules, size_t count) {
    PyObject *names = PyTuple_New((Py_ssize_t)count);
    if (names == NULL) return NULL;
    for (size_t i = 0; i < count; i++) {
        PyObject *name = PyBytes_FromString(rules[i].name);
        if (name == NULL) {
            Py_DECREF(names);
            return NULL;
        }
        PyTuple_SET_ITEM(names, (Py_ssize_t)i, name);
    }
    return names;
}

static PyMethodDef methods[] = {
    {"scan_response", scan_response, METH_O,
     "The parts of a simple response head, or None: parse it with httptools."},
    {"scan_request", (PyCFunction)(void (*)(void))scan_request, METH_FASTCALL,
     "The parts of a simple request head, or None: parse it with httptools."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_headscan", "Request and response heads read in one call.", -1,
    methods,
};

static int add(PyObject *module, const char *name, PyObject *value) {
    if (value == NULL) return -1;
    if (PyModule_AddObject(module, name, value) < 0) {
        Py_DECREF(value);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__headscan(void) {
    init_tables();
    if (index_rules(&response_set, response_rules, COUNT(response_rules)) < 0 ||
        index_rules(&request_set, request_rules, COUNT(request_rules)) < 0) {
        PyErr_SetString(PyExc_SystemError, "_headscan: a rule name too long, or too many alike");
        return NULL;
    }
    const char *target_extra = "-._~!$&'()*+,;=:@/?%[]{}|^`\\\"<>";
    for (int c = '0'; c <= '9'; c++) target_byte[c] = 1;
    for (int c = 'a'; c <= 'z'; c++) target_byte[c] = 1;
    for (int c = 'A'; c <= 'Z'; c++) target_byte[c] = 1;
    for (const char *c = target_extra; *c; c++) target_byte[(unsigned char)*c] = 1;
    for (int c = 0x21; c <= 0x7e; c++) host_byte[c] = 1;
    for (const char *c = "/\\?#@\"<>{}|^`"; *c; c++) host_byte[(unsigned char)*c] = 0;
    /* kept for the life of the process: returned without a new object per request */
    for (size_t i = 0; i < COUNT(known_methods); i++) {
        known_methods[i].object = PyBytes_FromString(known_methods[i].name);
        if (known_methods[i].object == NULL) return NULL;
    }
    VERSION_1_0 = PyBytes_FromString("1.0");
    VERSION_1_1 = PyBytes_FromString("1.1");
    if (!VERSION_1_0 || !VERSION_1_1) return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    if (add(module, "RESPONSE_NAMES", names_of(response_rules, COUNT(response_rules))) < 0 ||
        add(module, "REQUEST_NAMES", names_of(request_rules, COUNT(request_rules))) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
