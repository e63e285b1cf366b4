"""Run the fold, built with AddressSanitizer and UBSan, over folds in range and out of it.

    python tests/sanitized_fold.py SO_FILE EXAMPLES

Started by tests/test_fold.py in a process of its own (the sanitizers must be preloaded);
exits non-zero, with the sanitizer's report on stderr, at the first bad memory access.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import test_fold  # noqa: E402


def main(so_file: str, examples: int) -> None:
    spec = importlib.util.spec_from_file_location("_fold", so_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    @settings(max_examples=examples, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case=test_fold.folds(), shift=st.sampled_from([0, 0, 1, -1, 7, -(2**40)]),
           which=st.integers(0, 2))
    def run(case, shift, which) -> None:
        tables, group_table, group_row, index, values = case
        moved = [group_table, group_row, index][which]
        if len(moved):  # one target (a table, a row, a group) pushed out of range, or not
            moved[len(moved) // 2] += shift
        try:
            module.fold(tables, group_table, group_row, index, values)
        except IndexError:
            assert shift != 0
        if values is not None and len(values) > 1:  # a short values column is refused
            try:
                module.fold(tables, group_table, group_row, index, values[:-1])
            except (ValueError, IndexError):
                pass
            else:
                raise AssertionError("values shorter than index were taken")

    run()
    print(f"{examples} examples, no sanitizer report")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
