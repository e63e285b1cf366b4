"""The garbage collector's settings while a replay counts (sixminutes/collector.py)."""
from __future__ import annotations

import gc
import json

import pytest

from sixminutes.cli import main
from sixminutes.collector import THRESHOLD, fewer_collections


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
