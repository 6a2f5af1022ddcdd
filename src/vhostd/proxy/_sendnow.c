/* A write straight into a connection's socket, for the moment its transport holds nothing.
 *
 * uvloop's transport.write() goes through seven Cython layers (buffer it, try to write it,
 * account for it, check whether to resume the protocol) around the one write(2) that a
 * small answer needs, and vhostd makes two such writes per proxied request: about a tenth
 * of its user CPU per small request. When nothing is queued in the transport, the kernel
 * may as well get the bytes now; whatever it does not take goes to transport.write(), which
 * queues it, applies back-pressure and reports errors as before (proxy/outlet.py).
 *
 * The socket is non-blocking (libuv made it so), so the write never waits and the GIL is
 * kept: releasing it would cost more than the write's own user-space half.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <limits.h>
#include <sys/uio.h>
#include <unistd.h>

/* write_now(fd, data[, more]) -> how many bytes the kernel took (of data, then more, in one
 * writev; each bytes or a buffer of bytes), 0 when it would block or was interrupted, or -1
 * on any other error: the caller hands everything not taken to the transport, which meets
 * the same error and reports it. */
static PyObject *write_now(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 && nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "write_now(fd, data[, more])");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    if (fd == -1 && PyErr_Occurred()) return NULL;
    if (fd < 0 || fd > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "write_now: not a file descriptor");
        return NULL;
    }
    struct iovec parts[2];
    Py_buffer views[2];
    int count = (int)nargs - 1, viewed = 0;
    for (int i = 0; i < count; i++) {
        PyObject *data = args[i + 1];
        if (PyBytes_CheckExact(data)) {
            parts[i].iov_base = PyBytes_AS_STRING(data);
            parts[i].iov_len = (size_t)PyBytes_GET_SIZE(data);
            continue;
        }
        /* a memoryview of a body (a slice not copied): held until written */
        if (PyObject_GetBuffer(data, &views[viewed], PyBUF_SIMPLE) < 0) {
            while (viewed > 0) PyBuffer_Release(&views[--viewed]);
            return NULL;
        }
        parts[i].iov_base = views[viewed].buf;
        parts[i].iov_len = (size_t)views[viewed].len;
        viewed++;
    }
    ssize_t sent = count == 1 ? write((int)fd, parts[0].iov_base, parts[0].iov_len)
                              : writev((int)fd, parts, count);
    if (sent < 0) sent = (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    while (viewed > 0) PyBuffer_Release(&views[--viewed]);
    return PyLong_FromSsize_t(sent);
}

static PyMethodDef methods[] = {
    {"write_now", (PyCFunction)(void (*)(void))write_now, METH_FASTCALL,
     "Write bytes straight into a non-blocking socket: how many the kernel took."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_sendnow", "A write straight into a socket, past the transport.",
    -1, methods,
};

PyMODINIT_FUNC PyInit__sendnow(void) { return PyModule_Create(&module_def); }
