"""The `sixminutes` command: `replay` on every input layout, its report and --json, options, `synth`.

Inputs are written in tmp_path; expected numbers are worked out by hand from them.
Most runs are in-process (`main([...])` with capsys); a few run the real console script
to see the exit status, stderr and a terminal.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

from unittest.mock import ANY

import pytest

import sixminutes.cli as cli
from sixminutes.cli import main

SCRIPT = Path(sys.executable).parent / "sixminutes"
BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
"""The environment of a console script whose output is buffered, as it usually is."""
STAT_FIELDS = {"sum", "count", "squares", "min", "max"}
ALERT_FIELDS = {"id", "timestamp", "time", "msg", "plugin", "key", "count", "profile",
                "direction", "account", "duration", "doc"}

# 1700000000 is 2023-11-14 22:13:20 UTC; 1700000000 % 360 == 80, so its window starts at
# 1699999920 (22:12:00) and the next one at 1700000280 (22:18:00).
T0 = 1_700_000_000
W0 = 1_699_999_920
W1 = 1_700_000_280


def cdr(doc_id: str, end: int = T0, billsec: int = 30, code: str = "200",
        profile: str = "carrierA", direction: str = "egress", account: str = "acct1",
        **extra: str) -> dict:
    """A FreeSWITCH mod_json_cdr document with the ccnq3 variables (all values strings)."""
    variables = {
        "end_epoch": str(end), "billsec": str(billsec), "duration": str(billsec + 2),
        "answer_epoch": str(end - billsec) if billsec else "0",
        "ccnq_profile": profile, "ccnq_direction": direction, "ccnq_account": account,
        "sip_term_status": code, "progress_mediamsec": "1500",
        "hangup_cause": "NORMAL_CLEARING" if billsec else "CALL_REJECTED",
    }
    variables.update(extra)
    return {"_id": doc_id, "variables": variables}


# Four calls of carrierA (egress) in window W0: 3 answered (30 s, 5 s, 60 s), one 503 with
# billsec 0 → calls 4, ASR 75.0 %, NER 75.0 % (503 is a network failure), zero 25.0 %,
# ACD (30+5+60)/3 = 31.7 s, PDD 1.50 s; the 503 raises unexpected_sip once when its evidence
# bounds are lowered to one CDR (alert_on_one_code), and never by default (one CDR proves nothing).
FOUR = [cdr("c1", T0, 30), cdr("c2", T0 + 10, 0, "503"), cdr("c3", T0 + 20, 5),
        cdr("c4", T0 + 30, 60)]


def alert_on_one_code(tmp_path) -> str:
    """A config under which a single unexpected SIP code raises its alert, as the seed did."""
    config = tmp_path / "one-code.toml"
    config.write_text("[plugins.unexpected_sip]\nmin_count = 1\nmin_calls = 1\nshare = 0.0\n")
    return str(config)


def dumps(value) -> bytes:
    return json.dumps(value).encode()


def jsonl(docs) -> bytes:
    return b"".join(dumps(d) + b"\n" for d in docs)


def run_json(capsys, *args: str) -> dict:
    assert main(["replay", "--json", "--no-progress", *args]) == 0
    out, _err = capsys.readouterr()
    return json.loads(out)


def calls(data: dict, window: int = W0, profile: str = "carrierA", direction: str = "egress") -> int:
    stat = data.get(str(window), {}).get(f'calls{{direction="{direction}",profile="{profile}"}}')
    return stat["count"] if stat else 0


def total_calls(data: dict) -> int:
    return sum(s["count"] for series in data.values() for k, s in series.items()
               if k.startswith("calls{"))


# 1. Input layouts


def test_json_array(tmp_path, capsys):
    p = tmp_path / "array.json"
    p.write_bytes(json.dumps(FOUR, indent=2).encode())
    result = run_json(capsys, str(p))
    assert result["rejected"] == {}
    assert calls(result["data"]) == 4


def test_json_lines(tmp_path, capsys):
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(jsonl(FOUR + [cdr("c5", T0 + 400, 12)]))
    result = run_json(capsys, str(p))
    assert result["rejected"] == {}
    assert calls(result["data"]) == 4
    assert calls(result["data"], W1) == 1


def test_json_lines_with_a_broken_line_counts_it(tmp_path, capsys):
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(dumps(FOUR[0]) + b"\n{broken\n" + dumps(FOUR[1]) + b"\n")
    result = run_json(capsys, str(p))
    assert result["rejected"] == {"bad_json": 1}
    assert calls(result["data"]) == 2


@pytest.mark.parametrize("name", ["cdrs.jsonl.gz", "cdrs.json"])  # gzip found by content too
def test_gzip(tmp_path, capsys, name):
    p = tmp_path / name
    p.write_bytes(gzip.compress(jsonl(FOUR)))
    result = run_json(capsys, str(p))
    assert result["rejected"] == {}
    assert calls(result["data"]) == 4


def test_log_dir_style_directory(tmp_path, capsys):
    """mod_json_cdr's log-dir: one <uuid>.cdr.json per CDR, dated subdirectories with rotate."""
    top = tmp_path / "json_cdr"
    (top / "2023-11-14").mkdir(parents=True)
    (top / "a1b2.cdr.json").write_bytes(dumps(FOUR[0]))  # compact, one line
    (top / "2023-11-14" / "c3d4.cdr.json").write_bytes(json.dumps(FOUR[1], indent=2).encode())
    (top / "2023-11-14" / "e5f6.cdr.json.gz").write_bytes(gzip.compress(dumps(FOUR[2])))
    variables = "".join(f"<{k}>{v}</{k}>" for k, v in FOUR[3]["variables"].items())
    (top / "2023-11-14" / "g7h8.cdr.xml").write_text(  # mod_xml_cdr's, in the same tree
        f'<?xml version="1.0"?>\n<cdr core-uuid="x"><variables>{variables}</variables></cdr>')
    (top / "README.txt").write_text("not a CDR")  # skipped
    result = run_json(capsys, str(top))
    assert result["rejected"] == {}
    assert calls(result["data"]) == 4


def changes_dump() -> dict:
    return {"results": [
        {"seq": "1-g1", "id": "c1", "changes": [{"rev": "1-a"}], "doc": {**FOUR[0], "_rev": "1-a"}},
        {"seq": "2-g1", "id": "_design/app", "changes": [{"rev": "1-d"}],
         "doc": {"_id": "_design/app", "_rev": "1-d", "views": {"by_end": {"map": "function(d){}"}}}},
        {"seq": "3-g1", "id": "c2", "changes": [{"rev": "1-b"}], "doc": {**FOUR[1], "_rev": "1-b"}},
        {"seq": "4-g1", "id": "gone", "changes": [{"rev": "2-z"}], "deleted": True,
         "doc": {"_id": "gone", "_rev": "2-z", "_deleted": True}},
    ], "last_seq": "4-g1", "pending": 0}


def test_couchdb_changes_dump_with_design_doc_and_deletion(tmp_path, capsys):
    p = tmp_path / "changes.json"
    p.write_bytes(json.dumps(changes_dump(), indent=1).encode())
    result = run_json(capsys, str(p))
    assert result["rejected"] == {"design_doc": 1, "deleted": 1}
    assert calls(result["data"]) == 2


def test_couchdb_continuous_changes_feed(tmp_path, capsys):
    """`curl '.../_changes?feed=continuous&include_docs=true'`: one row per line, then last_seq."""
    dump = changes_dump()
    p = tmp_path / "feed.jsonl"
    p.write_bytes(jsonl(dump["results"]) + dumps({"last_seq": "4-g1"}) + b"\n")
    result = run_json(capsys, str(p))
    assert result["rejected"] == {"design_doc": 1, "deleted": 1}
    assert calls(result["data"]) == 2


def test_couchdb_all_docs_dump(tmp_path, capsys):
    rows = [{"id": d["_id"], "key": d["_id"], "value": {"rev": "1-a"}, "doc": {**d, "_rev": "1-a"}}
            for d in FOUR]
    rows.insert(1, {"id": "_design/app", "key": "_design/app", "value": {"rev": "3-d"},
                    "doc": {"_id": "_design/app", "_rev": "3-d", "language": "javascript"}})
    p = tmp_path / "all_docs.json"
    p.write_bytes(dumps({"total_rows": 5, "offset": 0, "rows": rows}))
    result = run_json(capsys, str(p))
    assert result["rejected"] == {"design_doc": 1}
    assert calls(result["data"]) == 4


def test_non_object_elements_of_an_array_are_not_object(tmp_path, capsys):
    """DESIGN/REASONS: `not_object` is "the document is not a JSON object"."""
    p = tmp_path / "mixed.json"
    p.write_bytes(dumps([FOUR[0], 42, "text", None, 1.5, [1, 2]]))
    result = run_json(capsys, str(p))
    assert calls(result["data"]) == 1
    assert result["rejected"] == {"not_object": 5}


def test_json_string_element_of_an_array_is_not_decoded_as_a_cdr(tmp_path, capsys):
    p = tmp_path / "strings.json"
    p.write_bytes(dumps([json.dumps(FOUR[0])]))  # an array holding one *string*
    result = run_json(capsys, str(p))
    assert result["data"] == {}
    assert result["rejected"] == {"not_object": 1}


def test_a_csv_row_that_does_not_fit_the_template_is_bad_csv_at_its_line(tmp_path, capsys):
    """Asterisk's cdr_csv (here, 8 columns) is not mod_cdr_csv's example template (15)."""
    p = tmp_path / "Master.csv"
    p.write_text('"","100","200","default","Console/dsp",7,7,"ANSWERED"\n')
    result = run_json(capsys, str(p))
    assert result["rejected"] == {"bad_csv": 1}
    assert result["rejections"] == [{"where": f"{p}:1", "reason": "bad_csv",
                                     "detail": "8 fields where example has 15"}]


def test_same_document_in_two_files_is_a_duplicate(tmp_path, capsys):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(jsonl(FOUR))
    b.write_bytes(jsonl(FOUR[:1]))
    result = run_json(capsys, str(a), str(b))
    assert result["rejected"] == {"duplicate": 1}
    assert calls(result["data"]) == 4


# 2. --json output


def test_json_output_shape(tmp_path, capsys):
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(jsonl(FOUR + [cdr("c5", T0 + 400, 12)]) + b"42\n{\"x\": 1}\n")
    assert main(["replay", "--json", "--no-progress", str(p)]) == 0
    assert json.loads(capsys.readouterr().out)["alerts"] == []  # one 503 in four calls: no alert
    assert main(["replay", "--json", "--no-progress", "--config", alert_on_one_code(tmp_path),
                 str(p)]) == 0
    out, err = capsys.readouterr()
    assert out.endswith("\n") and out.count("\n") == 1  # one JSON object, one line
    assert err == ""
    result = json.loads(out)
    assert set(result) == {"data", "alerts", "incidents", "carrier_incidents", "rejected",
                           "where_rejected", "rejections", "problems"}
    [incident] = result["incidents"]  # the one alert record is one incident of one window
    assert incident["alerts"] == [result["alerts"][0]["id"]] and incident["windows"] == 1
    assert incident["rule"] == "unexpected_sip" and incident["carrier"] == "carrierA/egress"
    assert [g["carrier"] for g in result["carrier_incidents"]] == ["carrierA/egress"]
    assert set(result["data"]) == {str(W0), str(W1)}
    for series in result["data"].values():
        for k, stat in series.items():
            assert re.fullmatch(r'[a-z_]+(\{([a-z_]+="[^"]*",)*[a-z_]+="[^"]*"\})?', k), k
            assert set(stat) == STAT_FIELDS, k
            assert stat["count"] >= 1 and stat["min"] <= stat["max"]
    w0 = result["data"][str(W0)]
    carrier = 'direction="egress",profile="carrierA"'
    assert w0[f"calls{{{carrier}}}"] == {"sum": 4, "count": 4, "squares": 4, "min": 1, "max": 1}
    assert w0[f"billsec{{{carrier}}}"] == {"sum": 95, "count": 3, "squares": 900 + 25 + 3600,
                                           "min": 5, "max": 60}
    assert w0[f"network_failures{{{carrier}}}"]["count"] == 1
    assert w0[f'sip_status{{code="503",{carrier}}}']["count"] == 1
    assert w0['account_calls{account="acct1",direction="egress"}']["count"] == 4
    assert result["rejected"] == {"not_object": 1, "no_variables": 1}
    assert result["where_rejected"] == {  # the lines after the five CDRs
        "not_object": {"first": f"{p}:6", "last": f"{p}:6", "last_detail": ANY},
        "no_variables": {"first": f"{p}:7", "last": f"{p}:7", "last_detail": ""}}
    assert result["rejections"] == [  # every rejected document, with where it was read
        {"where": f"{p}:6", "reason": "not_object", "detail": ANY},
        {"where": f"{p}:7", "reason": "no_variables", "detail": ""}]
    assert result["problems"] == []
    (alert,) = result["alerts"]
    assert ALERT_FIELDS <= set(alert)
    assert alert["plugin"] == "unexpected_sip"
    assert alert["msg"] == "carrierA (egress): unexpected SIP 503"
    assert alert["timestamp"] == W0 and alert["count"] == 1
    # labelled by what the plugin names (a carrier), not by the triggering CDR's account
    assert (alert["profile"], alert["direction"], alert["account"]) == ("carrierA", "egress", "")
    assert alert["duration"] == {"billable": 0, "total": 2}
    assert alert["doc"]["_id"] == "c2"


# 3. The text report


def test_text_report(tmp_path, capsys):
    good = tmp_path / "good.json"
    bad_epoch = {"_id": "bad-epoch", "variables": {"end_epoch": "soon", "billsec": "3"}}
    good.write_bytes(dumps(FOUR + [{"x": 1}, bad_epoch]))
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"{not json")
    assert main(["replay", "--no-progress", "--config", alert_on_one_code(tmp_path),
                 str(good), str(bad)]) == 0  # rejects still exit 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "sixminutes replay: 4 CDRs accepted, 3 rejected, 1 windows of 6 minutes"
    assert "2023-11-14 22:12–22:18 UTC  (window 1699999920)" in lines
    header = next(line for line in lines if line.split()[:3] == ["profile", "direction", "calls"])
    assert header.split()[3:6] == ["ASR%", "NER%", "zero%"]
    row = next(line.split() for line in lines if line.split()[:1] == ["carrierA"])
    #            profile     direction calls  ASR%    NER%    zero%   ACD s   PDD s   MOS  codes
    assert row == ["carrierA", "egress", "4", "75.0", "75.0", "25.0", "31.7", "1.50", "-", "503×1"]
    alerts = lines.index(next(line for line in lines if line.startswith("Alerts:")))
    assert lines[alerts].startswith("Alerts: 1 records in 1 incidents")
    assert "unexpected_sip [warning]: carrierA (egress): unexpected SIP 503" in lines[alerts + 1]
    rejected = lines.index("Rejected: 3")
    assert rejected > alerts
    reasons = {line.split()[0]: int(line.split()[1]) for line in lines[rejected + 1:] if line.strip()}
    assert reasons == {"bad_json": 1, "no_variables": 1, "bad_end_epoch": 1}


def test_max_alerts_limits_the_report(tmp_path, capsys):
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(jsonl([cdr(f"e{i}", T0, 0, code, profile=f"p{i}")
                         for i, code in enumerate(["503", "502", "500"])]))
    assert main(["replay", "--no-progress", "--max-alerts", "1", "--config",
                 alert_on_one_code(tmp_path), str(p)]) == 0
    out = capsys.readouterr().out
    assert out.count("unexpected SIP") == 1
    assert "… and 2 more incidents" in out


# 4. Exit status and errors


def test_missing_path_exits_2_with_one_line_on_stderr(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_bytes(jsonl(FOUR))
    missing = tmp_path / "nope" / "cdrs.json"
    proc = subprocess.run([str(SCRIPT), "replay", str(good), str(missing)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stdout == ""  # checked before the first document: no half report
    assert proc.stderr.count("\n") == 1
    assert proc.stderr == f"sixminutes: cannot read {missing}: No such file or directory\n"


def test_the_console_script_writes_all_of_a_large_report_before_it_ends(tmp_path):
    # (run() ends a replay with os._exit: what is still buffered must have been written)
    docs = [cdr(f"c{i}", T0 + 360 * i, account=f"acct{i}") for i in range(600)]
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(jsonl(docs))
    proc = subprocess.run([str(SCRIPT), "replay", "--json", "--jobs", "2", str(p)],
                          capture_output=True, timeout=60, env=BUFFERED)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout) > 1 << 18  # (more than any buffer along the way)
    data = json.loads(proc.stdout)["data"]
    assert total_calls(data) == 600 and len(data) == 600


def test_the_console_script_exit_status_after_a_problem_is_1(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_bytes(jsonl(FOUR))
    (tmp_path / "bad.json.gz").write_bytes(b"not gzip")
    proc = subprocess.run([str(SCRIPT), "replay", "--json", str(good), str(tmp_path / "bad.json.gz")],
                          capture_output=True, timeout=60, env=BUFFERED)
    assert proc.returncode == 1
    assert calls(json.loads(proc.stdout)["data"]) == 4
    assert b"bad.json.gz" in proc.stderr


def test_missing_path_in_process(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "missing.json")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("sixminutes: cannot read ") and "missing.json" in err


def test_missing_config_exits_2(tmp_path, capsys):
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(jsonl(FOUR))
    assert main(["replay", "--config", str(tmp_path / "none.toml"), str(p)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("sixminutes: cannot read config ")


# 5. Plugins and configuration


def test_user_plugin_series_appear_in_json(tmp_path, capsys):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "per_account.py").write_text(
        "def plugin(ctx):\n"
        "    ctx.increment('site_calls', account=ctx.account)\n"
        "    if ctx.duration.billable > 0:\n"
        "        ctx.increment('site_billsec', ctx.duration.billable, carrier=ctx.profile)\n")
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(jsonl(FOUR))
    result = run_json(capsys, "--plugins", str(plugins), str(p))
    w0 = result["data"][str(W0)]
    assert w0['site_calls{account="acct1"}']["count"] == 4
    assert w0['site_billsec{carrier="carrierA"}']["sum"] == 95
    assert calls(result["data"]) == 4  # built-ins still there


def test_disable_accounts_removes_account_series(tmp_path, capsys):
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(jsonl(FOUR))
    with_accounts = run_json(capsys, str(p))
    assert any(k.startswith("account_") for k in with_accounts["data"][str(W0)])
    result = run_json(capsys, "--disable", "accounts", "--disable", "fraud", str(p))  # (fraud's too)
    keys = set(result["data"][str(W0)])
    assert not any(k.startswith("account_") for k in keys)
    assert keys == {k for k in with_accounts["data"][str(W0)] if not k.startswith("account_")}


def test_plugin_with_syntax_error_is_reported_and_the_rest_run(tmp_path, capsys):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "broken.py").write_text("def plugin(ctx)\n    ctx.increment('never')\n")
    (plugins / "fine.py").write_text("def plugin(ctx):\n    ctx.increment('fine_calls')\n")
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(jsonl(FOUR))
    assert main(["replay", "--json", "--no-progress", "--plugins", str(plugins), str(p)]) == 0
    out, err = capsys.readouterr()
    w0 = json.loads(out)["data"][str(W0)]
    assert w0["fine_calls"]["count"] == 4
    assert calls(json.loads(out)["data"]) == 4
    assert not any(k.startswith("never") for k in w0)
    (line,) = err.splitlines()
    assert line.startswith(f"sixminutes: plugin not loaded: {plugins / 'broken.py'}:1: SyntaxError")

    assert main(["replay", "--no-progress", "--plugins", str(plugins), str(p)]) == 0
    out, err = capsys.readouterr()
    assert "Plugin problems:" in out and "broken.py" in out
    assert "SyntaxError" in err


def test_plugin_raising_at_run_time_does_not_stop_the_others(tmp_path, capsys):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "crash.py").write_text("def plugin(ctx):\n    raise RuntimeError('boom')\n")
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(jsonl(FOUR))
    assert main(["replay", "--no-progress", "--plugins", str(plugins), str(p)]) == 0
    out = capsys.readouterr().out
    assert "crash: 4 errors, last: RuntimeError: boom" in out
    assert "carrierA" in out


# 20 calls of carrierB (ingress) in W0: 12 answered, 8 with billsec 0 (SIP 486) → zero-duration
# ratio 40 %: under the default bound (50 %), over a bound of 30 %. min_count is 20.
TWENTY = [cdr(f"z{i}", T0 + i, 0 if i < 8 else 40, "486" if i < 8 else "200",
              profile="carrierB", direction="ingress") for i in range(20)]


SEED_ZERO = "[rules.zero_duration_ratio]\nconfidence = 0\nfor_windows = 1\n"
"""The rule on its point value, as the seed had it: 8 of 20 is 40 %, above a bound of 0.3."""


def zero_duration_alerts(result: dict) -> list[dict]:
    return [a for a in result["alerts"] if a["plugin"] == "zero_duration_ratio"]


def test_config_rule_bound_decides_whether_the_alert_fires(tmp_path, capsys):
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(jsonl(TWENTY))
    default = run_json(capsys, str(p))
    assert default["rejected"] == {}
    assert zero_duration_alerts(default) == []

    config = tmp_path / "sixminutes.toml"
    config.write_text(SEED_ZERO + "bound = 0.3\n")
    tightened = run_json(capsys, "--config", str(config), str(p))
    (alert,) = zero_duration_alerts(tightened)
    assert alert["timestamp"] == W0
    assert alert["bound"] == 0.3 and alert["value"] == pytest.approx(0.4) and alert["samples"] == 20
    assert alert["labels"] == {"direction": "ingress", "profile": "carrierB"}

    config.write_text(SEED_ZERO + "bound = 0.3\nmin_count = 21\n")
    assert zero_duration_alerts(run_json(capsys, "--config", str(config), str(p))) == []


def test_config_from_environment(tmp_path, capsys, monkeypatch):
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(jsonl(TWENTY))
    config = tmp_path / "env.toml"
    config.write_text(SEED_ZERO + "bound = 0.3\n")
    monkeypatch.setenv("SIXMINUTES_CONFIG", str(config))
    assert len(zero_duration_alerts(run_json(capsys, str(p)))) == 1


def test_bad_config_exits_2(tmp_path, capsys):
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(jsonl(FOUR))
    config = tmp_path / "bad.toml"
    config.write_text("[rules.zero_duration_ratio]\nop = '>='\n")
    assert main(["replay", "--config", str(config), str(p)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "zero_duration_ratio" in err


# 6. synth


def test_synth_writes_valid_json_lines_that_replay_accepts(tmp_path, capsys):
    out = tmp_path / "x.jsonl.gz"
    before = int(time.time())
    assert main(["synth", "--count", "50", "--hours", "1", "--out", str(out)]) == 0
    assert capsys.readouterr().out == ""
    lines = gzip.decompress(out.read_bytes()).splitlines()
    assert len(lines) == 50

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    for line in lines:
        doc = json.loads(line, parse_constant=refuse)
        assert isinstance(doc, dict) and isinstance(doc["variables"], dict)
        end = int(doc["variables"]["end_epoch"])
        assert before - 3600 - 5 <= end <= int(time.time()) + 5

    result = run_json(capsys, str(out))
    assert result["rejected"] == {}
    assert total_calls(result["data"]) == 50


def test_synth_to_stdout_is_plain_json_lines():
    proc = subprocess.run([str(SCRIPT), "synth", "--count", "3", "--hours", "0.5", "--seed", "7"],
                          capture_output=True, timeout=30)
    assert proc.returncode == 0 and proc.stderr == b""
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and all(isinstance(json.loads(line), dict) for line in lines)


def test_synth_to_stdout_in_process_leaves_stdout_open(monkeypatch):
    """main() is callable in-process; writing to stdout must not close the caller's stdout."""
    buffer = io.BytesIO()
    stdout = io.TextIOWrapper(buffer, encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["synth", "--count", "2", "--hours", "0.5"]) == 0
    assert not stdout.closed
    stdout.flush()
    assert len(buffer.getvalue().splitlines()) == 2


# 7. Help


def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    for word in ("-h", "--help", "--version", "replay", "synth"):
        assert word in out, word


def test_replay_help_mentions_every_option(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["replay", "--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    for word in ("PATH", "--help", "--json", "--config", "--plugins", "--disable",
                 "--no-progress", "--max-alerts", "gzip", "_changes", "_all_docs"):
        assert word in out, word


def test_synth_help_mentions_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    out = capsys.readouterr().out
    for word in ("--out", "--count", "--hours", "--seed"):
        assert word in out, word


def test_console_script_help():
    proc = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0
    assert "replay" in proc.stdout and "synth" in proc.stdout and "--version" in proc.stdout


# 8. The progress bar: stderr only, and only on a terminal


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def eager_bar(monkeypatch):
    """The bar waits 0.5 s before showing; these inputs are read faster than that. (The CLI
    imports tqdm only when it shows a bar.)"""
    import tqdm as tqdm_module
    real = tqdm_module.tqdm

    def tqdm(*args, **kwargs):
        kwargs["delay"] = 0
        return real(*args, **kwargs)

    monkeypatch.setattr(tqdm_module, "tqdm", tqdm)


def test_progress_bar_goes_to_a_terminal_stderr_never_stdout(tmp_path, capsys, monkeypatch, eager_bar):
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(jsonl(FOUR))
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["replay", "--json", str(p)]) == 0
    out = capsys.readouterr().out
    assert calls(json.loads(out)["data"]) == 4  # stdout is exactly the JSON document
    assert "reading" in terminal.getvalue()


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path, capsys, eager_bar):
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(jsonl(FOUR))
    assert main(["replay", "--json", str(p)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert calls(json.loads(out)["data"]) == 4


def test_no_progress_flag_hides_the_bar_on_a_terminal(tmp_path, capsys, monkeypatch, eager_bar):
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(jsonl(FOUR))
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["replay", "--json", "--no-progress", str(p)]) == 0
    assert terminal.getvalue() == ""
    assert calls(json.loads(capsys.readouterr().out)["data"]) == 4


def test_real_terminal_on_stderr_leaves_stdout_clean(tmp_path):
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(jsonl(FOUR))
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([str(SCRIPT), "replay", "--json", str(p)], stdout=subprocess.PIPE,
                              stderr=slave, stdin=subprocess.DEVNULL, timeout=30)
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 0
    result = json.loads(proc.stdout)
    assert calls(result["data"]) == 4
    assert b"\r" not in proc.stdout and b"reading" not in proc.stdout


def test_serve_help_explains_the_token_and_the_guard(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for words in ("--token", "generated at first start", "STATE.token", "0600", "--auth-reads",
                  "?token=", "--allow-host", "421", "--allow-origin", "403"):
        assert words in out, words


def test_the_report_lists_where_each_rejected_document_was_read(tmp_path, capsys):
    p = tmp_path / "cdrs.jsonl"
    p.write_bytes(jsonl(FOUR) + b"{broken\n" + jsonl([cdr("c1", T0, 30)]) + b"{also broken\n")
    assert main(["replay", "--no-progress", str(p)]) == 0
    out = capsys.readouterr().out
    assert f"      {p}:5: " in out and f"      {p}:7: " in out  # the two bad_json lines
    assert "duplicate            1" in out and f"at {p}:6" in out
