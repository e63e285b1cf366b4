"""mod_cdr_csv files: every row counts in the window of its end stamp, read in --timezone;
the stock templates (example, FreeSWITCH's default, and sql) or a column list; rows that do
not fit are named by file:line."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest.mock import ANY

import pytest
from hypothesis import given, settings, strategies as st

from sixminutes.call import decode
from sixminutes.cli import main
from sixminutes.sources import csv_cdr
from sixminutes.sources.files import read_documents

SCRIPT = Path(sys.executable).parent / "sixminutes"
FIXTURES = Path("/work/shared/fixtures/cdr")
# 1700000000 is 2023-11-14 22:13:20 UTC, 23:13:20 in Paris (UTC+1 in November); its window
# starts at 1699999920 (22:12:00 UTC), the next one at 1700000280 (23:18:00 in Paris).
W0, W1 = 1_699_999_920, 1_700_000_280

# As mod_cdr_csv writes the example template: every field quoted, no header, local stamps.
EXAMPLE = (
    b'"Alice","+33612345678","+441234567890","default","2023-11-14 23:10:05",'
    b'"2023-11-14 23:10:09","2023-11-14 23:13:20","195","191","NORMAL_CLEARING",'
    b'"0d6f-1","","acct1","PCMA","PCMA"\n'
    b'"Bob","+33612345679","+15551234567","default","2023-11-14 23:17:00",'
    b'"2023-11-14 23:17:02","2023-11-14 23:17:59","59","57","NORMAL_CLEARING",'
    b'"0d6f-2","0d6f-2b","acct1","PCMU","PCMU"\n'
    b'"","0","+33140000000","default","2023-11-14 23:17:50","","2023-11-14 23:18:00","10","0",'
    b'"NO_ANSWER","0d6f-3","","acct 100%","",""\n'
    b"\n"
    b'"Eve","1","2","default","2023-11-14 23:17:00","","yesterday","1","0","NO_ANSWER",'
    b'"0d6f-4","","acct1","",""\n'
    b'"Mallory","1","2","default"\n'
)
SQL = (
    b'INSERT INTO cdr VALUES ("Alice","+33612345678","+441234567890","default",'
    b'"2023-11-14 23:10:05","2023-11-14 23:10:09","2023-11-14 23:13:20","195","191",'
    b'"NORMAL_CLEARING","0d6f-1","", "acct1");\n'
    b'INSERT INTO cdr VALUES ("","0","+33140000000","default","2023-11-14 23:17:50","",'
    b'"2023-11-14 23:18:00","10","0","NO_ANSWER","0d6f-3","", "acct1");\n'
    b"DELETE FROM cdr;\n"
)
UNKNOWN = 'direction="unknown",profile="unknown"'


def replay(capsys, *args: str, status: int = 0) -> dict:
    assert main(["replay", "--json", "--no-progress", *args]) == status
    return json.loads(capsys.readouterr().out)


def count(result: dict, window: int, series: str) -> int:
    stat = result["data"].get(str(window), {}).get(series)
    return stat["count"] if stat else 0


@pytest.mark.parametrize("gz", [False, True])
def test_an_example_template_csv_counts_every_row_in_the_window_of_its_end_stamp(
        tmp_path, capsys, gz):
    path = tmp_path / ("Master.csv.gz" if gz else "Master.csv")
    path.write_bytes(gzip.compress(EXAMPLE) if gz else EXAMPLE)
    result = replay(capsys, "--timezone", "Europe/Paris", str(path))
    assert count(result, W0, f"calls{{{UNKNOWN}}}") == 2  # ends 23:13:20 and 23:17:59 Paris
    assert count(result, W1, f"calls{{{UNKNOWN}}}") == 1  # ends 23:18:00 Paris
    assert count(result, W0, f"answered{{{UNKNOWN}}}") == 2
    assert result["data"][str(W0)][f"billsec{{{UNKNOWN}}}"]["sum"] == 191 + 57
    assert count(result, W1, f"zero_duration{{{UNKNOWN}}}") == 1
    assert count(result, W1, 'account_calls{account="acct 100%",direction="unknown"}') == 1
    assert count(result, W1, f'hangup_cause{{cause="NO_ANSWER",{UNKNOWN}}}') == 1
    assert result["rejected"] == {"bad_end_epoch": 1, "bad_csv": 1}
    assert result["where_rejected"]["bad_end_epoch"]["first"] == f"{path}:5"  # line 4 is blank
    assert "yesterday" in result["where_rejected"]["bad_end_epoch"]["last_detail"]
    assert result["rejections"] == [  # the reader's, then the engine's
        {"where": f"{path}:6", "reason": "bad_csv", "detail": "4 fields where example has 15"},
        {"where": f"{path}:5", "reason": "bad_end_epoch", "detail": ANY}]


def test_a_row_of_empty_fields_is_counted_not_skipped(tmp_path, capsys):
    path = tmp_path / "Master.csv"
    path.write_text("\n" + ",".join(['""'] * 15) + "\n\n")
    result = replay(capsys, str(path))
    assert result["rejected"] == {"bad_end_epoch": 1}  # (a blank line is no row)
    assert result["where_rejected"]["bad_end_epoch"] == {
        "first": f"{path}:2", "last": f"{path}:2", "last_detail": "missing"}


def test_the_numbers_of_a_row_are_the_calls_from_and_to(tmp_path):
    path = tmp_path / "Master.csv"
    path.write_bytes(EXAMPLE)
    first = next(iter(read_documents([str(path)])))
    call = decode(first).call
    assert (call.from_, call.to, call.id, call.account) == (
        "+33612345678", "+441234567890", "0d6f-1", "acct1")
    assert (call.profile, call.direction) == ("unknown", "unknown")  # the template has neither


def test_the_sql_template(tmp_path, capsys):
    path = tmp_path / "cdr.sql"
    path.write_bytes(SQL)
    result = replay(capsys, "--csv-template", "sql", "--timezone", "Europe/Paris", str(path))
    assert count(result, W0, f"calls{{{UNKNOWN}}}") == 1
    assert count(result, W1, f"calls{{{UNKNOWN}}}") == 1
    assert result["rejections"] == [{
        "where": f"{path}:3", "reason": "bad_csv",
        "detail": "not an INSERT INTO ... VALUES (...); line (the sql template)"}]


def test_a_column_list_gives_profile_direction_and_epochs(tmp_path, capsys):
    path = tmp_path / "custom.csv"
    path.write_text('u1,gw-a,outbound,1700000000,30,200,-\nu2,gw-a,outbound,1700000290,0,503,x\n')  # FreeSWITCH's word: egress
    result = replay(capsys, "--csv-columns",
                    "uuid,${sip_gateway_name},direction,end_epoch,billsec,sip_term_status,-",
                    str(path))
    carrier = 'direction="egress",profile="gw-a"'
    assert count(result, W0, f"calls{{{carrier}}}") == 1
    assert count(result, W1, f"network_failures{{{carrier}}}") == 1
    assert result["rejected"] == {}


def test_the_default_zone_is_the_machines(tmp_path):
    path = tmp_path / "Master.csv"
    path.write_bytes(EXAMPLE)
    runs = []
    for args, tz in (([], "Europe/Paris"), (["--timezone", "Europe/Paris"], "UTC"),
                     ([], "UTC")):
        proc = subprocess.run([str(SCRIPT), "replay", "--json", "--no-progress", *args,
                               str(path)], capture_output=True, text=True,
                              env={**os.environ, "TZ": tz}, timeout=60)
        runs.append(json.loads(proc.stdout)["data"])
    assert runs[0] == runs[1]  # the machine in Paris reads the stamps as --timezone says
    assert runs[2] != runs[0] and str(W0 + 3600) in runs[2]  # in UTC: an hour later


def test_a_stamp_in_the_repeated_hour_of_a_dst_change_is_its_first_occurrence(tmp_path):
    """2023-10-29 02:30 happens twice in Paris: 00:30 UTC (1698539400), then 01:30 UTC."""
    assert csv_cdr.layout(timezone="Europe/Paris").epoch("2023-10-29 02:30:00") == "1698539400"
    path = tmp_path / "Master.csv"
    path.write_text('"a","1","2","default","","","2023-10-29 02:30:00","1","0","NO_ANSWER",'
                    '"u1","","acct","",""\n')
    for args, tz in (([], "Europe/Paris"), (["--timezone", "Europe/Paris"], "UTC")):
        proc = subprocess.run([str(SCRIPT), "replay", "--json", "--no-progress", *args,
                               str(path)], capture_output=True, text=True,
                              env={**os.environ, "TZ": tz}, timeout=60)
        data = json.loads(proc.stdout)["data"]  # (its peak_concurrent spans the window before)
        assert [t for t, s in data.items() if any(k.startswith("calls{") for k in s)] == \
            [str(1698539400 - 1698539400 % 360)]


def test_jobs_2_reads_the_csv_options_too(tmp_path, capsys):
    path = tmp_path / "cdr.sql"
    path.write_bytes(SQL * 50)  # the same two calls: duplicates after the first 2
    one = replay(capsys, "--csv-template", "sql", "--timezone", "Asia/Tokyo", str(path))
    two = replay(capsys, "--jobs", "2", "--csv-template", "sql", "--timezone", "Asia/Tokyo",
                 str(path))
    assert one == two
    assert one["rejected"]["duplicate"] == 98
    assert "SIXMINUTES_CSV_TEMPLATE" not in os.environ  # put back after the processes


@pytest.mark.parametrize("args, flag", [
    (["--csv-template", "nope"], "--csv-template: unknown CSV template 'nope'"),
    (["--timezone", "Mars/Olympus"], "--timezone: unknown time zone 'Mars/Olympus'"),
    (["--csv-columns", "uuid,billsec"], "--csv-columns must name end_stamp or end_epoch"),
])
def test_bad_csv_options_are_refused_naming_the_flag(tmp_path, capsys, args, flag):
    path = tmp_path / "Master.csv"
    path.write_bytes(EXAMPLE)
    assert main(["replay", "--no-progress", *args, str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and flag in err


def test_the_real_freeswitch_csv_fixture(capsys):
    """Kxingyunliushui's Master.csv: the example template, re-saved by a spreadsheet (no quotes,
    stamps cut to the minute as 2020/2/10 22:41); its last two rows repeat earlier ones."""
    path = FIXTURES / "Kxingyunliushui__freeswitch_tools__Master.csv"
    result = replay(capsys, "--timezone", "Asia/Shanghai", str(path))
    assert result["rejected"] == {"duplicate": 2}
    calls = {int(t): s[f"calls{{{UNKNOWN}}}"]["count"] for t, s in result["data"].items()
             if f"calls{{{UNKNOWN}}}" in s}  # (a window where calls were only in progress has none)
    assert sum(calls.values()) == 8
    # its first row ends 2020/2/10 22:41 in Shanghai (UTC+8): 14:41 UTC, 1581345660, in the
    # window of 14:36 (1581345360); with seconds cut, 22:41:00 to 22:41:59 all fall there
    assert calls[1581345360] >= 1
    assert result["where_rejected"]["duplicate"]["first"] == f"{path}:9"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                        max_size=10), min_size=15, max_size=15))
def test_a_row_gives_the_call_of_the_same_variables_in_json(fields):
    """Whatever the values (quotes, commas, %, newlines), the row's Call is the JSON's."""
    fields[6] = "2023-11-14 23:13:20"
    layout = csv_cdr.layout("example", timezone="Europe/Paris")
    line = ",".join('"' + f.replace('"', '""') + '"' for f in fields) + "\n"
    (doc,) = list(layout.documents(line.encode(), "f.csv", _Reading()))
    variables = dict(zip(csv_cdr.TEMPLATES["example"], fields))
    variables["end_epoch"] = "1700000000"
    for epoch in ("start_epoch", "answer_epoch"):  # (what the stamps give: tested above)
        if epoch in doc["variables"]:
            variables[epoch] = doc["variables"][epoch]
    variables["sip_from_user"], variables["sip_to_user"] = fields[1], fields[2]
    want = decode(json.dumps({"variables": {
        k: v.replace("%", "%25") for k, v in variables.items()}}).encode())
    assert decode(doc).call == want.call
    assert decode(doc).call.account == (fields[12] or "unknown")


class _Reading:
    documents = 0

    def run(self, *args):
        pass

    def reject(self, *args):
        raise AssertionError(args)
