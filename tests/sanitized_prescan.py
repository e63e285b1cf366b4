"""Run the pre-scan, built with AddressSanitizer and UBSan, over hostile inputs.

    python tests/sanitized_prescan.py SO_FILE EXAMPLES

Started by tests/test_prescan.py in a process of its own (the sanitizers must be preloaded);
exits non-zero, with the sanitizer's report on stderr, at the first bad memory access.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import test_prescan  # noqa: E402
from helpers import raw  # noqa: E402
from sixminutes.call import _FIELDS, _KEPT  # noqa: E402


def main(so_file: str, examples: int) -> None:
    spec = importlib.util.spec_from_file_location("_prescan", so_file)
    assert spec is not None and spec.loader is not None
    prescan = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prescan)
    prescan.configure(_KEPT, _FIELDS)

    def every_prefix_step(data: bytes, step: int) -> None:
        for cut in range(0, len(data) + 1, step):
            piece = data[:cut]  # a fresh object: a read past its end is caught
            kept = prescan.members(piece)
            prescan.end_epoch(piece)
            prescan.deeper_than(piece, 3)
            assert len(prescan.unquote(piece)) <= len(piece)
            assert prescan.bad_percent(piece) < len(piece)
            strict = prescan.unquote_strict(piece)
            assert strict < len(piece) if isinstance(strict, int) else len(strict) <= len(piece)
            items, used, odd, copied = prescan.split_lines(piece + b"\n" + piece, 2, 1, 360)
            assert used <= 2 * len(piece) + 1 and len(items) >= 1
            assert odd <= len(items) and copied <= used
            assert kept is None or len(kept) <= len(piece) + 16

    @settings(max_examples=examples, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(data=test_prescan.serialized() | test_prescan.mutated() | st.binary(max_size=300)
           | st.lists(st.sampled_from([b"%", b"%4", b"%41", b"a", b"%zz", b"\xff"])).map(b"".join))
    def run(data: bytes) -> None:
        every_prefix_step(data, max(1, len(data) // 7))

    run()
    every_prefix_step(raw(billsec="12", sip_term_status="503", rtp_audio_in_mos="4.1"), 1)
    print(f"{examples} examples, no sanitizer report")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
