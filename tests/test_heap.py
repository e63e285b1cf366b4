"""The heap of a replay process (sixminutes/heap.py): the collector's settings, malloc's."""
from __future__ import annotations

import gc
import json
import subprocess
import sys

import pytest

from sixminutes.cli import main
from sixminutes.heap import THRESHOLD, fewer_collections


def test_the_block_freezes_the_heap_and_raises_the_thresholds_then_puts_them_back():
    before = gc.get_threshold()
    assert before != THRESHOLD
    with fewer_collections():
        assert gc.get_threshold() == THRESHOLD
        assert gc.get_freeze_count() > 1000  # (the modules, at least)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_settings_are_put_back_when_the_block_raises():
    before = gc.get_threshold()
    with pytest.raises(KeyError):
        with fewer_collections():
            raise KeyError("x")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_replay_counts_under_the_raised_thresholds_in_every_process(tmp_path, capsys, jobs):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "threshold.py").write_text(
        "import gc\n"
        "def plugin(ctx):\n"
        "    ctx.increment('gc_threshold', gc.get_threshold()[0])\n")
    lines = [json.dumps({"_id": f"c{i}", "variables": {
        "end_epoch": str(1_700_000_000 + 360 * i), "billsec": "3",
        "ccnq_profile": "p", "ccnq_direction": "egress", "ccnq_account": "a"}})
        for i in range(4)]  # (four windows: both processes of --jobs 2 count some)
    path = tmp_path / "cdrs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    before = gc.get_threshold()
    assert main(["replay", "--json", "--no-progress", "--jobs", jobs,
                 "--plugins", str(plugins), str(path)]) == 0
    data = json.loads(capsys.readouterr().out)["data"]
    seen = [series["gc_threshold"] for series in data.values()]
    assert [(s["count"], s["min"], s["max"]) for s in seen] == [(1, THRESHOLD[0], THRESHOLD[0])] * 4
    assert gc.get_threshold() == before


_FREED = """
import resource, sys
from sixminutes.heap import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
blocks = [bytes(60_000) for _ in range(3_000)]  # (180 MB in blocks malloc takes from its heap)
full = rss()
del blocks
print(full - rss())
"""


def test_freed_memory_is_kept_by_the_process_only_when_asked(tmp_path):
    given_back = {how: int(subprocess.run([sys.executable, "-c", _FREED, how], check=True,
                                          capture_output=True, text=True).stdout)
                  for how in ("default", "keep")}
    assert given_back["default"] > 64 << 20  # glibc trims the top of its heap
    assert given_back["keep"] < 1 << 20  # kept for the next batch
