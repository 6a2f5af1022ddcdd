/* The common response head in one call (see headscan.py for how it is used).
 *
 * httptools hands a response over one callback per header, and each callback is about
 * 2,000 instructions of Python call machinery: over a third of what vhostd spends per
 * small request. Nearly every response a backend sends is simple: the whole head in the
 * first read, a status from 200 to 599, a Content-Length, no obs-fold, a Connection
 * header that names nothing. scan_response() reads such a head in one pass and returns
 * everything the proxy needs from it, the headers to forward already joined; for anything
 * else it returns None and the caller parses with httptools as before. It accepts only
 * heads that llhttp accepts too (tests/proxy/test_headscan.py compares the two).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <strings.h>

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

/* What a response header is to the proxy; the names mirror RESPONSE_RULES in headers.py. */
enum kind { KEEP, DROP, LENGTH, CHUNKED, CONNECTION };

static const struct {
    const char *name;
    size_t len;
    enum kind kind;
} hop_by_hop[] = {
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
#define HOP_BY_HOP_COUNT (sizeof(hop_by_hop) / sizeof(hop_by_hop[0]))

static enum kind classify(const char *name, size_t len) {
    for (size_t i = 0; i < HOP_BY_HOP_COUNT; i++) {
        if (hop_by_hop[i].len == len && strncasecmp(hop_by_hop[i].name, name, len) == 0)
            return hop_by_hop[i].kind;
    }
    return KEEP;
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

static int token_is(const char *token, size_t len, const char *word) {
    return strlen(word) == len && strncasecmp(token, word, len) == 0;
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

/* scan_response(data) -> (head_end, status, keep_alive, length, length_digits, reason,
 *                         forwarded_headers) | None */
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
        while (p < end && value_byte[(unsigned char)*p]) p++;
        reason_end = p;
    }
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n') Py_RETURN_NONE;
    p += 2;

    const char *kept[MAX_KEPT][2]; /* lines forwarded as they are: [start, end) with CRLF */
    int kept_count = 0;
    Py_ssize_t kept_size = 0;
    long long length = -1;
    const char *digits = NULL;
    size_t digits_len = 0;
    int options = 0;
    for (;;) {
        if (end - p < 2) Py_RETURN_NONE; /* the head goes on in a later read */
        if (p[0] == '\r') {
            if (p[1] != '\n') Py_RETURN_NONE;
            p += 2;
            break;
        }
        const char *line = p;
        while (p < end && token_byte[(unsigned char)*p]) p++;
        size_t name_len = (size_t)(p - line);
        if (name_len == 0 || p == end || *p != ':') Py_RETURN_NONE; /* incl. obs-fold */
        p++;
        while (p < end && is_ows(*p)) p++;
        const char *value = p;
        while (p < end && value_byte[(unsigned char)*p]) p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') Py_RETURN_NONE;
        const char *value_end = p;
        while (value_end > value && is_ows(value_end[-1])) value_end--;
        p += 2;
        switch (classify(line, name_len)) {
        case KEEP:
            if (kept_count == MAX_KEPT) Py_RETURN_NONE;
            if (kept_count && kept[kept_count - 1][1] == line) {
                kept[kept_count - 1][1] = p; /* adjacent lines: one copy */
            } else {
                kept[kept_count][0] = line;
                kept[kept_count][1] = p;
                kept_count++;
            }
            kept_size += p - line;
            break;
        case DROP:
            break;
        case LENGTH: {
            size_t len = (size_t)(value_end - value);
            if (digits != NULL || len == 0 || len > MAX_LENGTH_DIGITS) Py_RETURN_NONE;
            length = 0;
            for (size_t i = 0; i < len; i++) {
                if (value[i] < '0' || value[i] > '9') Py_RETURN_NONE;
                length = length * 10 + (value[i] - '0');
            }
            digits = value;
            digits_len = len;
            break;
        }
        case CHUNKED:
            Py_RETURN_NONE; /* chunked bodies are parsed by httptools */
        case CONNECTION: {
            int these = connection_options(value, value_end);
            if (these < 0) Py_RETURN_NONE;
            options |= these;
            break;
        }
        }
    }
    /* without a length the body runs until the backend closes: httptools' business */
    if (digits == NULL && status != 204 && status != 304) Py_RETURN_NONE;
    /* as llhttp_should_keep_alive() decides it */
    int keep_alive = minor == 1 ? !(options & 1) : (options & 2) != 0;

    PyObject *forwarded = PyBytes_FromStringAndSize(NULL, kept_size);
    if (forwarded == NULL) return NULL;
    char *out = PyBytes_AS_STRING(forwarded);
    for (int i = 0; i < kept_count; i++) {
        memcpy(out, kept[i][0], (size_t)(kept[i][1] - kept[i][0]));
        out += kept[i][1] - kept[i][0];
    }
    PyObject *result = PyTuple_New(7);
    if (result == NULL) {
        Py_DECREF(forwarded);
        return NULL;
    }
    /* (PyTuple_SET_ITEM steals each reference; a NULL left in place on failure is fine:
     * the tuple's dealloc skips it) */
    PyTuple_SET_ITEM(result, 6, forwarded);
    PyObject *item = PyLong_FromSsize_t(p - buf);
    if (item == NULL) goto fail;
    PyTuple_SET_ITEM(result, 0, item);
    if ((item = PyLong_FromLong(status)) == NULL) goto fail;
    PyTuple_SET_ITEM(result, 1, item);
    PyTuple_SET_ITEM(result, 2, Py_NewRef(keep_alive ? Py_True : Py_False));
    if ((item = PyLong_FromLongLong(length)) == NULL) goto fail;
    PyTuple_SET_ITEM(result, 3, item);
    item = digits == NULL ? Py_NewRef(Py_None) : PyBytes_FromStringAndSize(digits, digits_len);
    if (item == NULL) goto fail;
    PyTuple_SET_ITEM(result, 4, item);
    if ((item = PyBytes_FromStringAndSize(reason, reason_end - reason)) == NULL) goto fail;
    PyTuple_SET_ITEM(result, 5, item);
    return result;
fail:
    Py_DECREF(result);
    return NULL;
}

static PyObject *hop_by_hop_names(void) {
    PyObject *names = PyTuple_New(HOP_BY_HOP_COUNT);
    if (names == NULL) return NULL;
    for (size_t i = 0; i < HOP_BY_HOP_COUNT; i++) {
        PyObject *name = PyBytes_FromString(hop_by_hop[i].name);
        if (name == NULL) {
            Py_DECREF(names);
            return NULL;
        }
        PyTuple_SET_ITEM(names, i, name);
    }
    return names;
}

static PyMethodDef methods[] = {
    {"scan_response", scan_response, METH_O,
     "The parts of a simple response head, or None: parse it with httptools."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_headscan", "Response heads read in one call.", -1, methods,
};

PyMODINIT_FUNC PyInit__headscan(void) {
    init_tables();
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    PyObject *names = hop_by_hop_names();
    if (names == NULL || PyModule_AddObject(module, "HOP_BY_HOP", names) < 0) {
        Py_XDECREF(names);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
