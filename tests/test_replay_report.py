"""`sixminutes replay` says where each rejected document was and which files it could not read
whole, and its exit status says so: 0 all read, 1 a file not read to its end, 2 nothing counted.

Real files (a gzip cut in the middle, junk bytes, a link to nowhere) and the real console script.
"""
from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from sixminutes.cli import main

SCRIPT = Path(sys.executable).parent / "sixminutes"
T0 = 1_700_000_000
W0 = 1_699_999_920


def cdr(doc_id: str, end: int = T0, billsec: int = 30) -> bytes:
    return json.dumps({"_id": doc_id, "variables": {
        "end_epoch": str(end), "billsec": str(billsec), "ccnq_profile": "carrierA",
        "ccnq_direction": "egress", "sip_term_status": "200"}}).encode()


def replay(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), "replay", "--no-progress", *args], capture_output=True,
                          text=True, timeout=60)


def calls(result: dict) -> int:
    return sum(s["count"] for series in result["data"].values() for k, s in series.items()
               if k.startswith("calls{"))


def test_bad_lines_are_reported_as_file_and_line_in_the_report_and_in_json(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(cdr("1") + b"\n" + b'{"broken": \n' + cdr("2") + b"\n")
    b.write_bytes(b"\n" + cdr("3") + b"\n" + cdr("4") + b"\n" + b"{nope}\n" +
                  json.dumps({"_id": "5", "variables": {}}).encode() + b"\n")
    proc = replay(str(a), str(b))
    assert proc.returncode == 0, proc.stderr
    assert f"bad_json             2" in proc.stdout
    assert f"first at {a}:2, last at {b}:4" in proc.stdout  # (b's line 1 is blank)
    assert f"bad_end_epoch        1" in proc.stdout and f"at {b}:5: missing" in proc.stdout
    result = json.loads(replay("--json", str(a), str(b)).stdout)
    assert calls(result) == 4
    assert result["rejected"] == {"bad_json": 2, "bad_end_epoch": 1}
    assert result["where_rejected"]["bad_json"]["first"] == f"{a}:2"
    assert result["where_rejected"]["bad_json"]["last"] == f"{b}:4"
    assert result["where_rejected"]["bad_end_epoch"] == {
        "first": f"{b}:5", "last": f"{b}:5", "last_detail": "missing"}


def test_a_gzip_cut_in_the_middle_keeps_what_came_before_and_exits_1_naming_it(tmp_path):
    lines = [cdr(str(i), T0 + i % 300) for i in range(4000)]
    data = gzip.compress(b"\n".join(lines) + b"\n")
    cut = tmp_path / "cdrs.jsonl.gz"
    cut.write_bytes(data[:len(data) // 2])
    whole = tmp_path / "more.json"
    whole.write_bytes(cdr("more"))
    proc = replay("--json", str(cut), str(whole))
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    kept = zlib.decompressobj(31).decompress(data[:len(data) // 2])  # what the half holds
    assert calls(result) == kept.count(b"\n") + 1  # every whole line before the cut, and more.json
    assert 1000 < calls(result) < 4000
    assert result["problems"] == [{"path": str(cut), "reason": "damaged", "detail": result[
        "problems"][0]["detail"]}]
    assert result["problems"][0]["detail"].startswith("truncated")
    assert result["rejected"] == {"damaged": 1}
    assert f"sixminutes: {cut}: damaged: truncated" in proc.stderr
    text = replay(str(cut), str(whole))
    assert text.returncode == 1
    assert "Files not read to their end: 1 (exit status 1)" in text.stdout
    assert f"  {cut}: damaged: truncated" in text.stdout


def test_junk_bytes_exit_1_naming_the_file_and_the_rest_is_counted(tmp_path):
    junk = tmp_path / "junk.json"
    junk.write_bytes(random.Random(7).randbytes(2048).replace(b"{", b"").replace(b"[", b"").replace(b"<", b"")
                     .replace(b'"', b"").lstrip() or b"\x00")
    good = tmp_path / "good.json"
    good.write_bytes(cdr("1"))
    proc = replay("--json", str(junk), str(good))
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert calls(result) == 1
    assert [(p["path"], p["reason"]) for p in result["problems"]] == [(str(junk), "unknown_format")]
    assert f"sixminutes: {junk}: unknown_format: not JSON, XML or CSV" in proc.stderr


def test_a_file_that_cannot_be_opened_exits_1_naming_it(tmp_path):
    d = tmp_path / "log"
    d.mkdir()
    (d / "a.cdr.json").write_bytes(cdr("1"))
    os.symlink(tmp_path / "rotated-away.json", d / "b.cdr.json")
    proc = replay(str(d))
    assert proc.returncode == 1
    assert f"{d / 'b.cdr.json'}: unreadable: No such file or directory" in proc.stdout
    assert f"sixminutes: {d / 'b.cdr.json'}: unreadable" in proc.stderr
    assert "1 CDRs accepted" in proc.stdout


def test_a_path_that_does_not_exist_exits_2_before_anything_is_counted(tmp_path):
    (tmp_path / "a.json").write_bytes(cdr("1"))
    proc = replay(str(tmp_path / "a.json"), str(tmp_path / "nope.json"))
    assert proc.returncode == 2 and proc.stdout == ""


def test_jobs_2_reports_the_same_places_and_problems(tmp_path, capsys):
    a = tmp_path / "a.jsonl"
    a.write_bytes(b"\n".join(cdr(str(i), T0 + 360 * (i % 5)) for i in range(50)) + b"\n{bad\n")
    data = gzip.compress(b"\n".join(cdr(f"z{i}", T0 + 360 * (i % 3)) for i in range(3000)))
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[:len(data) * 2 // 3])
    results = []
    for jobs in ("1", "2"):
        assert main(["replay", "--json", "--no-progress", "--jobs", jobs, str(a), str(cut)]) == 1
        results.append(json.loads(capsys.readouterr().out))
    one, two = results
    assert one["where_rejected"] == two["where_rejected"]
    assert one["where_rejected"]["bad_json"]["first"] == f"{a}:51"
    assert one["problems"] == two["problems"] and one["rejected"] == two["rejected"]
    assert one["data"] == two["data"]


def test_help_documents_the_exit_status():
    proc = subprocess.run([str(SCRIPT), "replay", "--help"], capture_output=True, text=True)
    text = " ".join(proc.stdout.split())
    assert "Exit status: 0 when every input was read to its end" in text
    assert "1 when a file could not be read whole" in text
    assert "2 when nothing was counted" in text


def test_the_text_report_joins_bad_rows_that_follow_each_other(tmp_path):
    path = tmp_path / "Master.csv"
    good = ('"a","1","2","default","2023-11-14 23:10:05","","2023-11-14 23:13:20","10","0",'
            '"NO_ANSWER","u1","","acct","",""\n')
    path.write_text('"x","y"\n' * 3 + good + '"x","y"\n' + '"x","y","z"\n')
    proc = replay("--timezone", "UTC", str(path))
    assert proc.returncode == 0, proc.stderr
    assert f"      {path}:1-3 (3 rows): 2 fields where example has 15\n" in proc.stdout
    assert f"      {path}:5: 2 fields where example has 15\n" in proc.stdout
    assert f"      {path}:6: 3 fields where example has 15\n" in proc.stdout
    assert "1 CDRs accepted, 5 rejected" in proc.stdout
