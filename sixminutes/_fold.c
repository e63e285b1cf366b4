/* A batch's values folded into the Store's cells: the hot loop of series.count().
 *
 *     fold(tables, group_table, group_row, index, values)
 *
 * Each row i of the batch (already masked) belongs to group index[i]; that group's cell is
 * row group_row[g] of tables[group_table[g]] (a window's table: float64, five columns per
 * row: sum, count, squares, min, max). The row's value (values[i], or 1 when values is None:
 * a count) is added to its cell in the order of the rows, as Cells.add adds one value at a
 * time: so the sums are bit for bit those of adding the CDRs one by one. numpy's ufunc.at
 * did the same in five passes and one call per window; this is one pass over every window.
 * series.py keeps the numpy form for a build without a C compiler.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static int int64_buffer(PyObject *obj, Py_buffer *view, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (view->itemsize != 8 || view->format == NULL
            || (strcmp(view->format, "l") != 0 && strcmp(view->format, "q") != 0)) {
        PyErr_Format(PyExc_TypeError, "fold: %s must hold 64-bit integers", what);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int double_buffer(PyObject *obj, Py_buffer *view, int writable, const char *what) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0)
        return -1;
    if (view->itemsize != 8 || view->format == NULL || strcmp(view->format, "d") != 0) {
        PyErr_Format(PyExc_TypeError, "fold: %s must hold float64", what);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *fold(PyObject *module, PyObject *args) {
    PyObject *tables_arg, *group_table_arg, *group_row_arg, *index_arg, *values_arg;
    if (!PyArg_ParseTuple(args, "OOOOO", &tables_arg, &group_table_arg, &group_row_arg,
                          &index_arg, &values_arg))
        return NULL;
    PyObject *tables = PySequence_Fast(tables_arg, "fold: tables must be a sequence");
    if (tables == NULL)
        return NULL;
    Py_ssize_t n_tables = PySequence_Fast_GET_SIZE(tables);
    Py_buffer *views = PyMem_Calloc(n_tables ? n_tables : 1, sizeof(Py_buffer));
    Py_ssize_t got = 0;
    Py_buffer group_table = {0}, group_row = {0}, index = {0}, values = {0};
    int have_group_table = 0, have_group_row = 0, have_index = 0, have_values = 0;
    PyObject *result = NULL;
    if (views == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; got < n_tables; got++)
        if (double_buffer(PySequence_Fast_GET_ITEM(tables, got), &views[got], 1, "a table") < 0)
            goto done;
    if (int64_buffer(group_table_arg, &group_table, "group_table") < 0)
        goto done;
    have_group_table = 1;
    if (int64_buffer(group_row_arg, &group_row, "group_row") < 0)
        goto done;
    have_group_row = 1;
    if (int64_buffer(index_arg, &index, "index") < 0)
        goto done;
    have_index = 1;
    if (values_arg != Py_None) {
        if (double_buffer(values_arg, &values, 0, "values") < 0)
            goto done;
        have_values = 1;
    }
    Py_ssize_t n_groups = group_table.len / 8, n = index.len / 8;
    if (group_row.len / 8 != n_groups || (have_values && values.len / 8 != n)) {
        PyErr_SetString(PyExc_ValueError, "fold: group_table and group_row, or index and "
                        "values, differ in length");
        goto done;
    }
    const long long *gt = group_table.buf, *gr = group_row.buf, *ix = index.buf;
    const double *vs = have_values ? values.buf : NULL;
    for (Py_ssize_t g = 0; g < n_groups; g++) {  /* every target checked before any write */
        if (gt[g] < 0 || gt[g] >= n_tables || gr[g] < 0
                || (gr[g] + 1) * 5 * 8 > views[gt[g]].len) {
            PyErr_SetString(PyExc_IndexError, "fold: a group's cell is outside its table");
            goto done;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (ix[i] < 0 || ix[i] >= n_groups) {
            PyErr_SetString(PyExc_IndexError, "fold: a row's group is out of range");
            goto done;
        }
    for (Py_ssize_t i = 0; i < n; i++) {
        long long g = ix[i];
        double *cell = (double *)views[gt[g]].buf + gr[g] * 5;
        double v = vs ? vs[i] : 1.0;
        cell[0] += v;
        cell[1] += 1.0;
        cell[2] += v * v;
        if (v < cell[3])
            cell[3] = v;
        if (v > cell[4])
            cell[4] = v;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    for (Py_ssize_t i = 0; i < got; i++)
        PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    if (have_group_table)
        PyBuffer_Release(&group_table);
    if (have_group_row)
        PyBuffer_Release(&group_row);
    if (have_index)
        PyBuffer_Release(&index);
    if (have_values)
        PyBuffer_Release(&values);
    Py_DECREF(tables);
    return result;
}

static PyMethodDef methods[] = {
    {"fold", fold, METH_VARARGS,
     "fold(tables, group_table, group_row, index, values) -> None\n\n"
     "Add each row's value (1 when values is None) to its group's cell, row "
     "group_row[g] of tables[group_table[g]], in row order."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fold", NULL, -1, methods};

PyMODINIT_FUNC PyInit__fold(void) { return PyModule_Create(&module); }
