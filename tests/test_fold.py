"""The compiled fold (sixminutes/_fold.c): a batch's values into the cells, in row order."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import run_sanitized
from sixminutes import series
from sixminutes._fold import fold

EMPTY = (0.0, 0.0, 0.0, math.inf, -math.inf)


def one_at_a_time(tables, group_table, group_row, index, values):
    """The reference: each row's value added to its cell as Cells.add adds one value."""
    for i, g in enumerate(index.tolist()):
        cell = tables[group_table[g]][group_row[g]]
        v = 1.0 if values is None else float(values[i])
        cell[0] += v
        cell[1] += 1.0
        cell[2] += v * v
        if v < cell[3]:
            cell[3] = v
        if v > cell[4]:
            cell[4] = v


@st.composite
def folds(draw):
    sizes = draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
    finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    tables = []
    for size in sizes:
        rows = [EMPTY if draw(st.booleans()) else
                (draw(finite), float(draw(st.integers(1, 9))), draw(finite), draw(finite), draw(finite))
                for _ in range(size)]
        tables.append(np.array(rows, np.float64).reshape(-1, 5))
    groups = draw(st.integers(1, 8))
    group_table = np.array([draw(st.integers(0, len(sizes) - 1)) for _ in range(groups)], np.int64)
    group_row = np.array([draw(st.integers(0, sizes[t] - 1)) for t in group_table], np.int64)
    n = draw(st.integers(0, 40))
    index = np.array(draw(st.lists(st.integers(0, groups - 1), min_size=n, max_size=n)), np.int64)
    values = (None if draw(st.booleans()) else
              np.array(draw(st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=n, max_size=n)),
                       np.float64))
    return tables, group_table, group_row, index, values


@settings(max_examples=500, deadline=None)
@given(folds())
def test_the_fold_adds_each_row_as_one_value_at_a_time_bit_for_bit(case):
    tables, group_table, group_row, index, values = case
    expected = [t.copy() for t in tables]
    one_at_a_time(expected, group_table, group_row, index, values)
    compiled = [t.copy() for t in tables]
    fold(compiled, group_table, group_row, index, values)
    numpy_form = [t.copy() for t in tables]
    series._fold_numpy(numpy_form, group_table, group_row, index, values)
    for want, got, other in zip(expected, compiled, numpy_form):
        assert got.tobytes() == want.tobytes()
        assert (other == want).all()  # (numpy's minimum and maximum may keep the other zero: ±0)


def test_a_cell_outside_its_table_is_refused_before_anything_is_written():
    table = np.array([EMPTY, EMPTY], np.float64)
    before = table.tobytes()
    index = np.array([0, 1], np.int64)
    with pytest.raises(IndexError, match="outside its table"):
        fold([table], np.array([0, 0], np.int64), np.array([0, 2], np.int64), index, None)
    with pytest.raises(IndexError, match="outside its table"):
        fold([table], np.array([0, 1], np.int64), np.array([0, 0], np.int64), index, None)
    with pytest.raises(IndexError, match="group is out of range"):
        fold([table], np.array([0], np.int64), np.array([0], np.int64), index, None)
    assert table.tobytes() == before


def test_columns_of_another_type_or_length_are_refused():
    table = np.array([EMPTY], np.float64)
    one = np.zeros(1, np.int64)
    with pytest.raises(TypeError, match="64-bit integers"):
        fold([table], one, one, np.zeros(1, np.int32), None)
    with pytest.raises(TypeError, match="float64"):
        fold([table], one, one, one, np.zeros(1, np.float32))
    with pytest.raises(TypeError, match="float64"):
        fold([table.astype(np.float32)], one, one, one, None)
    with pytest.raises(ValueError, match="differ in length"):
        fold([table], one, one, one, np.zeros(2))
    frozen = table.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError):
        fold([frozen], one, one, one, None)


def test_folds_in_and_out_of_range_under_address_sanitizer(tmp_path):
    """No write or read past a table, an index or the values, whatever targets it is given."""
    proc = run_sanitized("_fold", "sanitized_fold.py", tmp_path, 400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no sanitizer report" in proc.stdout
