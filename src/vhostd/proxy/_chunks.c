/* A chunked response body checked as it passes, not decoded and framed again.
 *
 * Dynamic backends (PHP, Node, Rails, SSI) send most pages chunked. Through httptools each
 * chunk costs a Python callback and vhostd writes its own framing around it, which doubled
 * the cost of a small chunked page against one with a Content-Length. scan_chunks() walks
 * the framing of the bytes that arrive instead, so they go to an HTTP/1.1 client as they
 * are, and says where the body ends. It takes only the plainest framing: hex digits and
 * CRLF, data, CRLF, and a last chunk with no trailer. Anything else (chunk extensions,
 * trailers, spaces, a size of 16 digits or more) it leaves, at the start of that line, to
 * httptools; whatever it takes, llhttp reads the same way (tests/proxy/test_chunks.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Where in the framing a read ended: the low 3 bits of the state; in DATA the bytes of the
 * chunk still to come are the bits above them. */
enum phase { LINE = 1, DATA = 2, DATA_CR = 3, DATA_LF = 4 };
#define PHASE_BITS 3
#define MAX_SIZE_DIGITS 15 /* 60 bits: shifted by PHASE_BITS it still fits an int64 */
/* What the scan ended with, instead of a state to go on from. */
#define DONE 0
#define SLOW -1
#define BAD -2

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static PyObject *result(Py_ssize_t at, long long state) {
    return Py_BuildValue("(nL)", at, state);
}

/* scan_chunks(data, start, state) -> (at, state)
 *   state > 0: the body goes on; data[start:at] can be passed on, data[at:] (part of a
 *              chunk-size line) must be held and scanned again with the next read;
 *   DONE (0):  the body ends at `at`, its last bytes included;
 *   SLOW (-1): data[start:at] can be passed on; from `at`, the start of a chunk-size line,
 *              the framing is httptools' to read;
 *   BAD (-2):  no CRLF after a chunk's data at `at`: the response is broken.
 * The first call of a body passes state LINE. */
static PyObject *scan_chunks(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "scan_chunks(data, start, state)");
        return NULL;
    }
    char *buf;
    Py_ssize_t size;
    if (PyBytes_AsStringAndSize(args[0], &buf, &size) < 0) return NULL;
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    long long state = PyLong_AsLongLong(args[2]);
    if (PyErr_Occurred()) return NULL;
    if (start < 0 || start > size || state <= 0) {
        PyErr_SetString(PyExc_ValueError, "scan_chunks: start or state out of range");
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)buf + start;
    const unsigned char *end = (const unsigned char *)buf + size;
#define AT(pointer) ((pointer) - (const unsigned char *)buf)
    int phase = (int)(state & ((1 << PHASE_BITS) - 1));
    long long left = state >> PHASE_BITS;

    for (;;) {
        switch (phase) {
        case LINE: {
            const unsigned char *line = p;
            long long chunk = 0;
            int digit;
            while (p < end && (digit = hex_value(*p)) >= 0) {
                if (p - line == MAX_SIZE_DIGITS) return result(AT(line), SLOW);
                chunk = chunk * 16 + digit;
                p++;
            }
            /* an unfinished line is held: passed on only once it is known to be plain */
            if (end - p < 2) {
                int plain_so_far = p == end || (*p == '\r' && p > line);
                return result(AT(line), plain_so_far ? LINE : SLOW);
            }
            if (p == line || p[0] != '\r' || p[1] != '\n') return result(AT(line), SLOW);
            p += 2;
            if (chunk == 0) { /* the last chunk: a blank line ends the body, a trailer is slow */
                if (end - p < 2) return result(AT(line), p == end || *p == '\r' ? LINE : SLOW);
                if (p[0] != '\r' || p[1] != '\n') return result(AT(line), SLOW);
                return result(AT(p + 2), DONE);
            }
            left = chunk;
            phase = DATA;
            break;
        }
        case DATA: {
            Py_ssize_t here = end - p;
            if (here < left) {
                return result(size, ((left - here) << PHASE_BITS) | DATA);
            }
            p += left;
            left = 0;
            phase = DATA_CR;
            break;
        }
        case DATA_CR:
            if (p == end) return result(size, DATA_CR);
            if (*p != '\r') return result(AT(p), BAD);
            p++;
            phase = DATA_LF;
            break;
        case DATA_LF:
            if (p == end) return result(size, DATA_LF);
            if (*p != '\n') return result(AT(p), BAD);
            p++;
            phase = LINE;
            break;
        default:
            PyErr_SetString(PyExc_ValueError, "scan_chunks: not a state");
            return NULL;
        }
    }
}

static PyMethodDef methods[] = {
    {"scan_chunks", (PyCFunction)(void (*)(void))scan_chunks, METH_FASTCALL,
     "Walk the framing of a chunked body: (where to stop, state to go on from)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_chunks", "A chunked body's framing checked as it passes.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__chunks(void) {
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    if (PyModule_AddIntConstant(module, "START", LINE) < 0 ||
        PyModule_AddIntConstant(module, "DONE", DONE) < 0 ||
        PyModule_AddIntConstant(module, "SLOW", SLOW) < 0 ||
        PyModule_AddIntConstant(module, "BAD", BAD) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
