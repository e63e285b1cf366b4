"""Run the decoder into columns, built with AddressSanitizer and UBSan, over hostile inputs.

    python tests/sanitized_columns.py SO_FILE EXAMPLES

Started by tests/test_columns.py in a process of its own (the sanitizers must be preloaded);
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

import test_columns  # noqa: E402
import test_prescan  # noqa: E402
from helpers import raw  # noqa: E402

SKIP = object()


def main(so_file: str, examples: int) -> None:
    spec = importlib.util.spec_from_file_location("_columns", so_file)
    assert spec is not None and spec.loader is not None
    columns = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(columns)

    def decode(items: list) -> None:
        n = len(items)
        status = np.empty(n, np.uint8)
        ints, floats = np.empty((5, n), np.int64), np.empty((2, n), np.float64)
        codes = np.empty((9, n), np.int64)
        values = columns.decode(items, SKIP, status, ints, floats, codes)
        for row in np.flatnonzero(status == 0).tolist():  # every code of a row names a value
            assert all(0 <= codes[t, row] < len(values[t]) for t in range(9))

    def every_prefix_step(data: bytes, step: int) -> None:
        pieces = [data[:cut] for cut in range(0, len(data) + 1, step)]  # fresh objects
        decode(pieces + [SKIP, None, data])

    @settings(max_examples=examples, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(data=test_prescan.serialized() | test_prescan.mutated() | test_columns.edge_documents()
           | st.binary(max_size=300))
    def run(data: bytes) -> None:
        every_prefix_step(data, max(1, len(data) // 7))

    run()
    every_prefix_step(raw(billsec="12", ccnq_account="a%20b%zz%4", rtp_audio_in_mos="4.1"), 1)
    print(f"{examples} examples, no sanitizer report")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
