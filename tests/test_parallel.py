"""`replay --jobs N`: several processes, each counting whole windows, give one process's result.

Every comparison runs the real command twice on the same inputs, with one process and with
several, and expects the same JSON but for each alert's ``time`` (the wall clock when raised).
"""
from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import END, raw, seed_rules_toml
from sixminutes.cli import main
from sixminutes.config import Config
from sixminutes.engine import BATCH, Engine
from sixminutes import parallel
from sixminutes.call import Rejected, decode
from sixminutes.parallel import shard_of
from sixminutes.sources import files, segments
from sixminutes.sources.synthetic import Generator
from sixminutes.windows import WINDOW

SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "cdr"

# A site plugin that reads the window's own counts (ctx.stat) and alerts on them: it must see
# the same window in both runs.
PLUGIN = '''
def plugin(ctx):
    calls = ctx.stat("calls", direction=ctx.direction, profile=ctx.profile)
    if calls is not None and calls.count == 3:
        ctx.alert(f"{ctx.profile}: 3rd call", key=[ctx.profile], seen=calls.count)
'''


def plugin_dir(tmp_path: Path, name: str, source: str) -> Path:
    """A plugins directory holding one plugin file."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / f"{name}.py").write_text(source)
    return plugins


def replay_json(capsys, *args: str) -> dict:
    assert main(["replay", "--json", "--no-progress", *args]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    for alert in result["alerts"]:
        del alert["time"]
    return result


def assert_same(capsys, *args: str, jobs: int = 3) -> dict:
    one = replay_json(capsys, "--jobs", "1", *args)  # (by default, one process per core)
    many = replay_json(capsys, "--jobs", str(jobs), *args)
    assert many["data"] == one["data"]
    assert list(many["rejected"].items()) == list(one["rejected"].items())  # order too
    assert many["rejections"] == one["rejections"]  # each one where it was read, in order
    assert many["where_rejected"] == one["where_rejected"]
    assert [a["id"] for a in many["alerts"]] == [a["id"] for a in one["alerts"]]
    assert many["alerts"] == one["alerts"]
    return one


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Three hours of generated CDRs, with duplicates, late arrivals and bad documents."""
    rng = random.Random(7)
    docs = [doc for doc, _ in Generator(seed=3).corpus(BATCH + 1000, END - 3 * 3600, 3 * 3600)]
    docs += rng.sample(docs, 200)  # CouchDB resending: duplicates, far from their first copy
    late = rng.sample(range(len(docs)), 300)
    for i in late:  # arriving out of order, some windows after they ended
        j = min(len(docs) - 1, i + rng.randrange(50, 1500))
        docs[i], docs[j] = docs[j], docs[i]
    docs[10:10] = [b"not json", b'{"variables": {"end_epoch": "nan"}}', b'{"_id": "_design/x"}',
                   raw(_id="nan-doc", billsec="12", rtp_audio_in_mos="nan").replace(
                       b'"nan"', b"nan"), b'{"variables": {"end_epoch": "17000"}}']
    # A carrier failing for a moment: 30 rejected calls read just before the end of the first
    # batch, where one process checks the rules, then 200 answered ones in the same window.
    # The ASR rule fires only if the rules are checked at the same documents in every process.
    window = int(json.loads(docs[BATCH])["variables"]["end_epoch"]) // WINDOW * WINDOW
    blip = [raw(_id=f"blip{i}", end_epoch=str(window + 1 + i % 300), ccnq_profile="blip",
                ccnq_direction="egress", billsec="0" if i < 30 else "20",
                sip_term_status="487" if i < 30 else "200") for i in range(230)]
    docs[BATCH - 30:BATCH - 30] = blip[:30]
    docs[BATCH:BATCH] = blip[30:]
    path = tmp_path_factory.mktemp("parallel") / "cdrs.jsonl"
    path.write_bytes(b"\n".join(docs) + b"\n")
    return path


def test_many_processes_count_what_one_does(corpus, capsys, tmp_path):
    seed_alerts = tmp_path / "seed.toml"  # every unexpected code alerts: firing plugin alerts too
    seed_alerts.write_text("[plugins.unexpected_sip]\nmin_count = 1\nmin_calls = 1\nshare = 0.0\n" + seed_rules_toml())
    one = assert_same(capsys, "--config", str(seed_alerts), str(corpus))
    assert one["rejected"]["duplicate"] == 200 and one["rejected"]["bad_json"] >= 1
    assert [a["profile"] for a in one["alerts"] if a.get("rule") == "asr"] == ["blip"]
    assert {a["state"] for a in one["alerts"]} == {"firing", "resolved"}
    assert len(one["data"]) >= 30  # windows


def test_reasons_come_in_the_order_the_inputs_gave_them(tmp_path, capsys):
    """The second process's duplicate comes first in the inputs: first in the output too."""
    odd = (END // WINDOW | 1) * WINDOW + 10  # a window of the second of two processes
    path = tmp_path / "order.jsonl"
    path.write_bytes(b"\n".join([raw(_id="a", end_epoch=str(odd)), raw(_id="a", end_epoch=str(odd)),
                                  b"not json", raw(_id="b", end_epoch=str(odd - WINDOW))]) + b"\n")
    assert shard_of(raw(_id="a", end_epoch=str(odd)), 2) == 1
    one = assert_same(capsys, str(path), jobs=2)
    assert list(one["rejected"]) == ["duplicate", "bad_json"]


def test_documents_near_the_nesting_limit_are_each_counted_once(tmp_path, capsys):
    """Their end time is not plain, so each process decodes them to find their window; were
    the nesting limit msgspec's own (what is left of the stack), one process could place a
    document in the other's window while that one rejects it: counted by none."""
    from sixminutes.call import MAX_NESTING
    docs = []
    for i, levels in enumerate(range(MAX_NESTING - 40, MAX_NESTING + 40, 4)):
        deep = b"[" * levels + b"]" * levels
        docs.append(b'{"_id":"d%d","variables":{"end_epoch":" %d"},"x":%s}'
                    % (i, END + i * WINDOW, deep))  # (a blank: not plain)
    path = tmp_path / "deep.jsonl"
    path.write_bytes(b"\n".join(docs) + b"\n")
    one = assert_same(capsys, str(path), jobs=2)
    calls = sum(stat["count"] for window in one["data"].values()
                for key, stat in window.items() if key.startswith("calls{"))
    assert calls + sum(one["rejected"].values()) == len(docs)
    assert calls > 0 and one["rejected"] == {"bad_json": len(docs) - calls}


def test_the_text_report_is_the_same_too(corpus, tmp_path, capsys):
    plugins = plugin_dir(tmp_path, "picky",  # fails now and then: its count and last error show
        "def plugin(ctx):\n"
        "    if ctx.call.billsec % 7 == 3:\n"
        "        raise ValueError(f'billsec {ctx.call.billsec} in {ctx.timestamp}')\n")
    reports = []
    for jobs in ("1", "3"):
        assert main(["replay", "--no-progress", "--max-alerts", "1000", "--plugins", str(plugins),
                     "--jobs", jobs, str(corpus)]) == 0
        reports.append(capsys.readouterr().out)
    assert "picky: " in reports[0] and "duplicate" in reports[0]
    assert reports[1] == reports[0]


def test_alerts_of_a_site_plugin_that_reads_its_window_agree(corpus, tmp_path, capsys):
    plugins = plugin_dir(tmp_path, "milestone", PLUGIN)
    one = assert_same(capsys, "--plugins", str(plugins), str(corpus), jobs=2)
    assert any(a["plugin"] == "milestone" for a in one["alerts"])


def test_arrays_gzip_and_directories_agree(corpus, tmp_path, capsys):
    lines = corpus.read_bytes().splitlines()
    good = [json.loads(line) for line in lines[:1500] if line.startswith(b'{"core')]
    (tmp_path / "array.json").write_text(json.dumps(good))
    with gzip.open(tmp_path / "rest.jsonl.gz", "wb") as f:
        f.write(b"\n".join(lines[1500:]) + b"\n")
    one = assert_same(capsys, str(tmp_path / "array.json"), str(tmp_path / "rest.jsonl.gz"))
    assert one["rejected"].get("duplicate", 0) > 0


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/fixtures/cdr is absent")
def test_the_shared_fixtures_agree(capsys):
    assert_same(capsys, str(SHARED), jobs=2)


def test_an_alert_field_only_json_knows_how_to_write_crosses_processes(corpus, tmp_path, capsys):
    plugins = plugin_dir(tmp_path, "info",  # pickle cannot find this class in another process
        "from dataclasses import dataclass\n"
        "@dataclass\n"
        "class Info:\n"
        "    carrier: str\n"
        "def plugin(ctx):\n"
        "    if ctx.call.billsec == 0:\n"
        "        ctx.alert('zero', key=ctx.profile, info=Info(ctx.profile), profile=ctx.profile)\n")
    one = assert_same(capsys, "--plugins", str(plugins), str(corpus), jobs=2)
    assert any(a.get("info") == {"carrier": a["profile"]} for a in one["alerts"])


@pytest.mark.parametrize("ending, said", [
    ("raise KeyboardInterrupt('in the plugin')", "process 1: KeyboardInterrupt: in the plugin"),
    ("os._exit(3)", "replay process 1 ended with exit code 3"),  # dies: not waited for
])
@pytest.mark.parametrize("segments", [False, True], ids=["every-byte", "segments"])
def test_the_end_of_another_process_is_reported(ending, said, segments, corpus, tmp_path, capsys,
                                                request):
    # (in segments, this process waits for the other's segments when it ends)
    read = request.getfixturevalue("in_segments") if segments else None
    plugins = plugin_dir(tmp_path, "ending",  # only in the other process: this one is pytest
                         "import multiprocessing, os\n"
                         "def plugin(ctx):\n"
                         "    if multiprocessing.parent_process() is not None:\n"
                         f"        {ending}\n")
    assert main(["replay", "--json", "--no-progress", "--jobs", "2", "--plugins",
                 str(plugins), str(corpus)]) == 2
    assert said in capsys.readouterr().err
    assert read is None or read  # (this process read segments)


@pytest.mark.parametrize("ending", ["", "raise KeyboardInterrupt('in the plugin')", "os._exit(3)"])
def test_the_folder_the_shares_cross_is_removed_whatever_the_end(ending, corpus, tmp_path,
                                                                   capsys, monkeypatch):
    made, real = [], parallel._shares_folder

    def folder():
        made.append(real())
        return made[-1]

    monkeypatch.setattr(parallel, "_shares_folder", folder)
    plugins = plugin_dir(tmp_path, "ending", "import multiprocessing, os\n"
                                             "def plugin(ctx):\n"
                                             "    if multiprocessing.parent_process() is not None:\n"
                                             f"        {ending or 'pass'}\n")
    status = main(["replay", "--json", "--no-progress", "--jobs", "2", "--plugins",
                   str(plugins), str(corpus)])
    assert status == (2 if ending else 0)
    assert len(made) == 1 and made[0].name.startswith(f"/dev/shm/sixminutes-replay-{os.getpid()}-")
    assert not Path(made[0].name).exists()


@pytest.fixture
def in_segments(monkeypatch):
    """The corpus read as a big file is: streamed, in segments of 64 KB, a process each.
    (Forked: a spawned process would import the limits afresh and read the file whole. A
    thread another test left behind would otherwise make the replay spawn.)"""
    monkeypatch.setattr(parallel, "start_method", lambda: "fork")
    monkeypatch.setattr(parallel, "SEGMENTS_FROM", 2)
    monkeypatch.setattr(files, "SMALL_LIMIT", 0)
    monkeypatch.setattr(segments, "SEGMENT", 64 << 10)
    read = []
    real = segments._read

    def spy(fd, file, k, shard, scratch):
        read.append(k)
        return real(fd, file, k, shard, scratch)

    monkeypatch.setattr(segments, "_read", spy)
    return read


@pytest.mark.parametrize("jobs", [2, 3])
def test_processes_reading_a_segment_each_count_what_one_does(corpus, capsys, in_segments, jobs):
    assert_same(capsys, str(corpus), jobs=jobs)
    assert in_segments and all(k % jobs == 0 for k in in_segments)  # (this process's: the others' are theirs)


@pytest.mark.parametrize("jobs, segments", [(2, False), (3, True), (8, True)])
def test_a_big_file_is_read_a_segment_each_from_three_processes(tmp_path, jobs, segments):
    folder = tmp_path / "shares"
    folder.mkdir()
    exchange = parallel._exchange(str(folder), jobs, parallel.multiprocessing.get_context(), 4096)
    assert (exchange is not None) == segments
    if segments:
        assert exchange.segment == 4096 and (folder / "segments").is_dir()


def test_the_folders_of_replays_killed_are_removed_and_no_others(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()  # (a process id no process has now)
    for name in (f"sixminutes-replay-{gone.pid}-abc", f"sixminutes-replay-{os.getpid()}-def",
                 "sixminutes-replay-oldstyle", "other-folder"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "share-1.pickle").write_bytes(b"x" * 1000)
    assert parallel._sweep(str(tmp_path)) == [f"sixminutes-replay-{gone.pid}-abc"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([
        f"sixminutes-replay-{os.getpid()}-def", "sixminutes-replay-oldstyle", "other-folder"])
    assert parallel._sweep(str(tmp_path / "missing")) == []


def test_shares_go_through_the_queue_when_no_file_can_hold_them(corpus, capsys, monkeypatch):
    # (a container's /dev/shm is 64 MB: a day's share may not fit; here the folder is gone)
    class Gone:
        name = "/nonexistent/sixminutes-shares"

        def cleanup(self) -> None:
            pass

    monkeypatch.setattr(parallel, "_shares_folder", Gone)
    assert_same(capsys, str(corpus))


def test_a_share_is_handed_over_as_a_file_or_else_as_itself(tmp_path):
    share = b"\x80\x05pickled"
    path = parallel._hand_over(share, tmp_path / "share-1.pickle")
    assert path == tmp_path / "share-1.pickle" and path.read_bytes() == share
    assert parallel._hand_over(share, tmp_path / "gone" / "share-1.pickle") == share
    assert not (tmp_path / "gone").exists()


def test_a_negative_number_of_processes_is_refused(corpus, capsys):
    assert main(["replay", "--jobs", "-2", str(corpus)]) == 2
    assert "--jobs must be 0 (one per CPU) or more" in capsys.readouterr().err


# --- the pieces ------------------------------------------------------------------------------

@settings(max_examples=200)
@given(st.integers(946_684_800, 4_000_000_000), st.integers(1, 16))
def test_a_document_goes_to_its_windows_process_whatever_its_form(epoch, jobs):
    expected = (epoch // WINDOW) % jobs
    doc = {"_id": "x", "variables": {"end_epoch": str(epoch), "billsec": "3"}}
    assert shard_of(json.dumps(doc).encode(), jobs) == expected
    assert shard_of(json.dumps(doc, indent=2).encode(), jobs) == expected
    assert shard_of(doc, jobs) == expected
    assert shard_of({"id": "x", "doc": doc}, jobs) == expected
    assert shard_of({"variables": {"end_epoch": epoch}}, jobs) == expected


@settings(max_examples=300)
@given(st.lists(st.sampled_from([b'"end_epoch"', b"end_epoch", b":", b" ", b"\n", b'"', b"0", b"17",
                                 b"1700000000123", b"{", b",", b"x", b"\\"]), max_size=12))
def test_the_compiled_peek_reads_what_the_regular_expression_does(parts):
    if parallel._prescan is None:
        pytest.skip("the compiled pre-scan is not built (test_prescan says so)")
    raw = b"".join(parts)
    assert parallel._prescan.end_epoch(raw) == parallel._peek_slowly(raw)


@pytest.mark.parametrize("before", range(0, 40))
def test_the_key_is_found_wherever_it_falls_in_the_compiled_search(before):
    """The compiled search looks 16 places at a time for the key's 'd' and 'h': the key is
    found at every place of a block and near the end, and places with only its 'd' and 'h'
    where they fall are no key."""
    decoys = b'"ind_epocha" "and_xpoch" "end_epoc" dddddhhhhh '
    for after in range(0, 20):
        for key in (b'"end_epoch":1700000460', b'"end_epoch" : "1700000460"'):
            raw = b"x" * before + decoys[:before] + key + b" " * after
            assert parallel._prescan.end_epoch(raw) == parallel._peek_slowly(raw) == 1700000460
            twice = raw + key
            assert parallel._prescan.end_epoch(twice) == parallel._peek_slowly(twice) == -1
        cut = (b"x" * before + b'"end_epoch":1700000460')[:before + 10]  # the key cut short
        assert parallel._prescan.end_epoch(cut) == -1


ODD_ENDS = [b'"00001700000460"', b'" 1700000460"', b'"+1700000460"', b"1700000460.0e0",
            b'"1700000460 "', b"17000004600000", b'"1700000460"']


@pytest.mark.parametrize("end", ODD_ENDS)
@pytest.mark.parametrize("form", ["plain", "escaped key", "repeated key"])
def test_an_odd_end_epoch_goes_where_the_engine_reads_it(end, form):
    key = b'"end\\u005fepoch"' if form == "escaped key" else b'"end_epoch"'
    before = b'"callflow":{"end_epoch":"1"},' if form == "repeated key" else b""
    doc = b'{"_id":"x",' + before + b'"variables":{' + key + b":" + end + b',"billsec":"3"}}'
    try:
        epoch = decode(doc).call.end_epoch
    except Rejected:
        epoch = None
    for jobs in (2, 3, 7):
        assert shard_of(doc, jobs) == (0 if epoch is None else epoch // WINDOW % jobs)
        assert shard_of(json.loads(doc), jobs) == shard_of(doc, jobs)


def test_duplicates_written_oddly_are_still_found_by_many_processes(tmp_path, capsys):
    docs = []
    for i, end in enumerate(ODD_ENDS):
        docs.append(b'{"_id":"d%d","variables":{"end_epoch":"1700000460","billsec":"10"}}' % i)
        docs.append(b'{"_id":"d%d","variables":{"end_epoch":%s,"billsec":"10"}}' % (i, end))
    (tmp_path / "odd.jsonl").write_bytes(b"\n".join(docs) + b"\n")
    (tmp_path / "odd.json").write_text(json.dumps([json.loads(d) for d in docs]))
    for path in ("odd.jsonl", "odd.json"):
        one = assert_same(capsys, str(tmp_path / path))
        assert one["rejected"]["duplicate"] >= 5


@pytest.mark.parametrize("item", [b"not json", b"{}", {"variables": {"end_epoch": "soon"}},
                                  {"variables": []}, ["a list"], 42])
def test_a_document_without_a_readable_end_goes_to_the_first_process(item):
    assert shard_of(item, 4) == 0


@pytest.mark.parametrize("every", [1, 7, 100])
def test_a_replays_alert_lifecycle_does_not_depend_on_when_rules_were_checked(every):
    docs = [doc for doc, _ in Generator(seed=5).corpus(1500, END - 2 * 3600, 2 * 3600)]

    def settled(check_every: int) -> list:
        engine = Engine(Config(retention_hours=None))
        engine.hold_resolution, engine.check_every = True, check_every
        for doc in docs:
            engine.feed(doc)
        engine.flush()
        engine.settle()
        return sorted((a.id, a.state, a.starts_at, a.ends_at, a.resolution)
                      for a in engine.alerts.list() if "rule" not in a.fields)

    assert settled(every) == settled(1000)


def test_the_last_rejection_of_each_reason_is_the_last_the_inputs_gave(tmp_path):
    """The report's example of a reason is its last in the inputs, whichever process read it:
    here the second process's duplicate comes first and the first process's last."""
    odd = (END // WINDOW | 1) * WINDOW + 10  # a window of the second of two processes
    even = odd - WINDOW  # one of the first's
    assert (shard_of(raw(_id="x", end_epoch=str(odd)), 2), shard_of(raw(_id="x", end_epoch=str(even)), 2)) == (1, 0)
    path = tmp_path / "last.jsonl"
    path.write_bytes(b"\n".join([raw(_id="odd", end_epoch=str(odd)), raw(_id="odd", end_epoch=str(odd)),
                                 raw(_id="even", end_epoch=str(even)), raw(_id="even", end_epoch=str(even))]) + b"\n")
    config = Config(retention_hours=None)
    one = parallel.replay([str(path)], config, 1)
    two = parallel.replay([str(path)], config, 2)
    assert "even" in one.last_rejection["duplicate"]
    assert two.last_rejection == one.last_rejection


def test_workers_fork_only_while_one_thread_runs():
    """A fork copies locks other threads may hold: with a second thread the workers spawn.
    (In a fresh interpreter: this one may hold other tests' threads.)"""
    import subprocess
    import sys
    script = ("import threading; from sixminutes import parallel; print(parallel.start_method()); "
              "stop = threading.Event(); t = threading.Thread(target=stop.wait); t.start(); "
              "print(parallel.start_method()); stop.set(); t.join()")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["fork", "spawn"]


@pytest.mark.parametrize("raw, epoch", [
    (b'{"variables":{"end_epoch":"1700000000"}}', 1_700_000_000),
    (b'{"variables":{"end_epoch":1700000000}}', 1_700_000_000),
    (b'{"variables":{"end_epoch" : \t"17"}}', 17),
    (b'{"end_epoch":"170000000012"}', 170_000_000_012),  # 12 digits: the most it reads
    (b'{"end_epoch":17999999999}', 17_999_999_999),  # (an odd count of digits, nines)
    (b'{"end_epoch":7}', 7),
    (b'{"end_epoch":17:}', -1),
    (b'{"end_epoch":"1700000000123"}', -1),  # 13: the decoder's
    (b'{"end_epoch":"0170"}', -1),  # a leading zero
    (b'{"end_epoch":"17x"}', -1),  # a quoted value that is no number
    (b'{"end_epoch":17x}', -1),
    (b'{"end_epoch":"17","x":{"end_epoch":"18"}}', -1),  # repeated
    (b'{"end_epoch":""}', -1),
    (b'{"x":"end_epoch"}', -1),  # (no key: a value)
])
def test_both_peeks_read_plain_end_times_and_leave_the_rest_to_the_decoder(raw, epoch):
    assert parallel._peek_slowly(raw) == epoch
    assert parallel._prescan.end_epoch(raw) == epoch
