"""The real FreeSWITCH CDRs of ../shared/fixtures/cdr through `sixminutes replay --json`.

Every expectation below was read by hand from the fixture files (their `variables`) and
is written here as a literal; DESIGN.md's fallbacks and built-in series table are applied
in plain Python (`expected_series`). Nothing here uses the project's decoder.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sixminutes.cli import main

FIXTURES = Path(__file__).parents[1].parent / "shared/fixtures/cdr"

if not FIXTURES.is_dir():
    pytest.skip(f"real CDR fixtures not found at {FIXTURES}", allow_module_level=True)

STAT_FIELDS = {"sum", "count", "squares", "min", "max"}

# What each JSON fixture holds, read by hand from its `variables`:
#   end: end_epoch; window: end - end % 360 (worked out by hand);
#   profile: ccnq_profile, else sip_gateway_name, else sofia_profile_name;
#   direction: ccnq_direction, else direction, else "unknown";
#   account: ccnq_account, else accountcode, else "unknown";
#   code: sip_term_status, else sip_invite_failure_status, else "none";
#   cause: hangup_cause; billsec; answered (answer_epoch > 0 or billsec > 0);
#   pdd: progress_mediamsec if > 0, else progressmsec if > 0, else None;
#   mos: rtp_audio_in_mos when a finite number, else None.
FILES: dict[str, dict] = {
    # FS 1.10 inbound, answered 3 s; no ccnq_*, no accountcode, no sip_gateway_name.
    "somleng__somleng__freeswitch_cdr.json": dict(
        end=1657097407, window=1657097280, profile="external", direction="ingress",
        account="unknown", code="200", cause="NORMAL_UNSPECIFIED", billsec=3, answered=True,
        pdd=43, mos=4.50),
    # Failed outbound leg: 480 NO_USER_RESPONSE, early media (progress_mediamsec 1399).
    "somleng__somleng__freeswitch_cdr_outbound.json": dict(
        end=1657099430, window=1657099080, profile="external", direction="egress",
        account="unknown", code="480", cause="NO_USER_RESPONSE", billsec=0, answered=False,
        pdd=1399, mos=4.49),
    # A-leg bridged to the B-leg below: progress_mediamsec 5800 wins over progressmsec 6660.
    "somleng__somleng__freeswitch_cdr_leg_a_with_joined_by_leg_b.json": dict(
        end=1624793648, window=1624793400, profile="external", direction="egress",
        account="unknown", code="200", cause="NORMAL_CLEARING", billsec=8, answered=True,
        pdd=5800, mos=4.50),
    # B-leg: no sip_term_status (code "none"), progress_mediamsec 0 so progressmsec 302.
    "somleng__somleng__freeswitch_cdr_leg_b.json": dict(
        end=1624793648, window=1624793400, profile="external", direction="egress",
        account="unknown", code="none", cause="NORMAL_CLEARING", billsec=5, answered=True,
        pdd=302, mos=4.50),
    # Bare `nan` in callStats (invalid JSON); rtp_audio_in_mos is the string "nan".
    "somleng__somleng__freeswitch_cdr_with_invalid_json.json": dict(
        end=1745629775, window=1745629560, profile="external", direction="egress",
        account="unknown", code="none", cause="NORMAL_CLEARING", billsec=26, answered=True,
        pdd=1120, mos=None),
    # 2016 CANCEL while ringing: 487, both progress values 0, no RTP vars.
    "somleng__somleng__freeswitch_cdr.2016-aa1fe9d.json": dict(
        end=1474362924, window=1474362720, profile="external", direction="ingress",
        account="unknown", code="487", cause="ORIGINATOR_CANCEL", billsec=0, answered=False,
        pdd=None, mos=None, country="KH"),  # sip_to_user 85595975802 (+855)
    # ccnq3: ccnq_profile/ccnq_direction/ccnq_account win over sofia_profile_name/direction.
    "shimaore__ccnq3__example-CDR.json": dict(
        end=1350552916, window=1350552600, profile="upstream", direction="egress",
        account="test", code="487", cause="ORIGINATOR_CANCEL", billsec=0, answered=False,
        pdd=6200, mos=None, country="FR"),  # ccnq_to_e164 33654321012
    # cgrates 2018 (fscdr_test body): no direction, no accountcode, no sip_term_status.
    "cgrates__cgrates__fscdr_test.go.body.json": dict(
        end=1515666415, window=1515666240, profile="internal", direction="unknown",
        account="unknown", code="none", cause="NORMAL_CLEARING", billsec=68, answered=True,
        pdd=3420, mos=4.50),
    # cgrates 2018 (fsevent_test): accountcode 1001 but no direction variable.
    "cgrates__cgrates__fsevent_test.go.body-2018.json": dict(
        end=1521025788, window=1521025560, profile="internal", direction="unknown",
        account="1001", code="200", cause="NORMAL_CLEARING", billsec=21, answered=True,
        pdd=9760, mos=4.49),
    # cgrates 2015: repeated "callflow" key; sofia_profile_name cgrtest.
    "cgrates__cgrates__fscdr_test.go.body-2015.json": dict(
        end=1436280794, window=1436280480, profile="cgrtest", direction="ingress",
        account="1001", code="200", cause="NORMAL_CLEARING", billsec=66, answered=True,
        pdd=28, mos=4.50),
    # cgrates 2014: repeated "callflow" key; old RTP var set without mos.
    "cgrates__cgrates__fsevcorelate_test.go.jsonCdr-2014.json": dict(
        end=1396984242, window=1396983960, profile="internal", direction="ingress",
        account="1001", code="200", cause="NORMAL_CLEARING", billsec=15, answered=True,
        pdd=239, mos=None),
}

# The two mod_xml_cdr files, read by hand in the same way (their <variables>); both end in
# window 1560229920 (1560230140 % 360 == 220, 1560230104 % 360 == 184).
XML_FILES: dict[str, dict] = {
    # A-leg from an Avaya trunk, 11 s; no sip_term_status; <direction> has whitespace in
    # channel_data (not in variables).
    "zhouhailin__freeswitch-cdr-all__a_4b3b36af-3d98-4670-bc14-0ee08890d7d6.cdr.xml": dict(
        end=1560230140, window=1560229920, profile="internal", direction="ingress",
        account="unknown", code="none", cause="NORMAL_CLEARING", billsec=11, answered=True,
        pdd=2120, mos=4.50),
    # 30 s earlier on the same switch: 200, 6 s.
    "zhouhailin__freeswitch-cdr-all__a_6a7ccd66-6d2f-46c4-abd9-07cf37fc161e.cdr.xml": dict(
        end=1560230104, window=1560229920, profile="internal", direction="ingress",
        account="unknown", code="200", cause="NORMAL_CLEARING", billsec=6, answered=True,
        pdd=2300, mos=4.49),
}
# Asterisk cdr_csv (18 columns) and cdr_custom (19): no FreeSWITCH template fits them.
NOT_FREESWITCH_CSV = {"asterisk__testsuite__Master.csv": 2, "asterisk__testsuite__good.csv": 5,
                      "asterisk__testsuite__buggy.csv": 1, "KelySaina__cdr__Master.csv": 14}
FREESWITCH_CSV = "Kxingyunliushui__freeswitch_tools__Master.csv"  # mod_cdr_csv, example template


def key(name: str, **labels: str) -> str:
    """Prometheus-style series key (labels sorted by name; the values here need no escaping)."""
    return name + "{" + ",".join(f'{k}="{labels[k]}"' for k in sorted(labels)) + "}"


def expected_series(f: dict) -> dict[str, tuple[int, float]]:
    """series key -> (count, sum) for one CDR, from DESIGN.md's built-in series table."""
    carrier = {"direction": f["direction"], "profile": f["profile"]}
    account = {"account": f["account"], "direction": f["direction"]}
    destination = {"country": f.get("country", "unknown"), **carrier}  # (extensions: unknown)
    billsec = f["billsec"]
    series = {
        key("destination_calls", **destination): (1, 1),
        key("calls", **carrier): (1, 1),
        key("sip_status", code=f["code"], **carrier): (1, 1),
        key("hangup_cause", cause=f["cause"], **carrier): (1, 1),
        key("account_calls", **account): (1, 1),
    }
    if f["answered"]:
        series[key("answered", **carrier)] = (1, 1)
        series[key("destination_answered", **destination)] = (1, 1)
    if billsec == 0:
        series[key("zero_duration", **carrier)] = (1, 1)
        series[key("account_zero_duration", **account)] = (1, 1)
    else:
        series[key("billsec", **carrier)] = (1, billsec)
        series[key("account_billsec", **account)] = (1, billsec)
        series[key("destination_billsec", **destination)] = (1, billsec)
        if billsec < 6:
            series[key("short_calls", **carrier)] = (1, 1)
            if f["answered"]:
                series[key("account_short_calls", **account)] = (1, 1)
    if f["pdd"] is not None:
        series[key("pdd_ms", **carrier)] = (1, f["pdd"])
    if f["mos"] is not None:
        series[key("mos", **carrier)] = (1, f["mos"])
    # network_failures: none of these CDRs has a SIP code in {408,500,502,503,504}, nor
    # "none" with a Q.850 cause in {27,34,38,41,42,102}.
    return series


def replay(capsys, *paths: Path | str, spans: bool = False) -> dict:
    """The replay's JSON; without ``peak_concurrent`` (a call spans windows: tested apart)
    unless ``spans``."""
    assert main(["replay", "--json", "--no-progress", *map(str, paths)]) == 0
    out, _err = capsys.readouterr()
    result = json.loads(out)
    if not spans:
        data = {t: {k: v for k, v in cells.items() if not k.startswith("peak_concurrent{")}
                for t, cells in result["data"].items()}
        result["data"] = {t: cells for t, cells in data.items() if cells}
    return result


def flatten(data: dict) -> dict[tuple[int, str], tuple[int, float]]:
    return {(int(t), k): (s["count"], s["sum"]) for t, series in data.items() for k, s in series.items()}


def test_every_json_fixture_is_listed():
    assert sorted(p.name for p in FIXTURES.glob("*.json")) == sorted(FILES)


@pytest.mark.parametrize("name", sorted(FILES))
def test_fixture_is_accepted_with_its_series(capsys, name):
    f = FILES[name]
    assert f["window"] == f["end"] - f["end"] % 360  # the hand-worked window is right
    result = replay(capsys, FIXTURES / name)
    assert result["rejected"] == {}
    assert result["alerts"] == []  # 200/480/487/none are expected SIP codes; one call trips no rule
    assert list(result["data"]) == [str(f["window"])]
    series = result["data"][str(f["window"])]
    expected = expected_series(f)
    assert set(series) == set(expected)
    for k, (count, total) in expected.items():
        stat = series[k]
        assert set(stat) == STAT_FIELDS
        assert stat["count"] == count, k
        assert stat["sum"] == pytest.approx(total), k
        # one CDR: min = max = sum, squares = sum²
        assert stat["min"] == pytest.approx(total) and stat["max"] == pytest.approx(total), k
        assert stat["squares"] == pytest.approx(total * total), k


@pytest.mark.parametrize("name", sorted(FILES))
def test_peak_concurrent_of_each_fixture_is_its_call_seconds(capsys, name):
    """One call: in progress (1) at each second from its start_epoch to its end, in every
    window it spans, and nowhere else; its start read here by hand from the document."""
    text = (FIXTURES / name).read_text()
    start = int(re.search(r'"start_epoch"\s*:\s*"?(\d+)', text).group(1))
    f = FILES[name]
    data = replay(capsys, FIXTURES / name, spans=True)["data"]
    peaks = {int(t): cells[k] for t, cells in data.items() for k in cells
             if k.startswith("peak_concurrent{")}
    seconds = f["end"] - start
    if seconds <= 0:
        assert peaks == {}
        return
    first = max(start, f["window"] - 2 * 3600)  # (a call counts in its last two hours at most)
    last = f["end"] - 1
    assert sorted(peaks) == list(range(first - first % 360, last - last % 360 + 1, 360))
    assert sum(stat["sum"] for stat in peaks.values()) == f["end"] - first
    assert all(stat["max"] == 1 and stat["count"] == 360 for stat in peaks.values())


def test_bare_nan_fixture_has_no_mos_series(capsys):
    name = "somleng__somleng__freeswitch_cdr_with_invalid_json.json"
    raw = (FIXTURES / name).read_bytes()
    assert b'"mos":nan' in raw.replace(b" ", b"")  # the fixture really is invalid JSON
    with pytest.raises(ValueError):
        json.loads(raw, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    data = replay(capsys, FIXTURES / name)["data"]
    assert not any(k.startswith("mos") for k in data["1745629560"])
    assert data["1745629560"][key("billsec", direction="egress", profile="external")]["sum"] == 26


@pytest.mark.parametrize("name", ["cgrates__cgrates__fscdr_test.go.body-2015.json",
                                  "cgrates__cgrates__fsevcorelate_test.go.jsonCdr-2014.json"])
def test_repeated_callflow_key_is_accepted(capsys, name):
    assert (FIXTURES / name).read_text().count('"callflow"') == 2
    result = replay(capsys, FIXTURES / name)
    assert result["rejected"] == {}
    window = str(FILES[name]["window"])
    assert result["data"][window][key("calls", direction="ingress",
                                      profile=FILES[name]["profile"])]["count"] == 1


def test_whole_directory_is_the_sum_of_the_files(capsys, tmp_path):
    expected: dict[tuple[int, str], tuple[int, float]] = {}
    for f in [*FILES.values(), *XML_FILES.values()]:
        for k, (count, total) in expected_series(f).items():
            c, s = expected.get((f["window"], k), (0, 0))
            expected[(f["window"], k)] = (c + count, s + total)
    for name in [*FILES, *XML_FILES]:  # (the CSV files: see the tests after these)
        (tmp_path / name).write_bytes((FIXTURES / name).read_bytes())
    result = replay(capsys, tmp_path)
    assert result["rejected"] == {}
    got = flatten(result["data"])
    assert set(got) == set(expected)
    for k, (count, total) in expected.items():
        assert got[k][0] == count, k
        assert got[k][1] == pytest.approx(total), k
    calls = sum(c for (_t, k), (c, _s) in got.items() if k.startswith("calls{"))
    assert calls == 13
    # the two legs of one call end in the same second: one window, two calls
    assert got[(1624793400, key("calls", direction="egress", profile="external"))] == (2, 2)


def test_whole_directory_report_counts_every_file(capsys):
    assert main(["replay", "--no-progress", "--timezone", "UTC", str(FIXTURES)]) == 0
    out = capsys.readouterr().out
    # 11 JSON + 2 XML + 8 rows of the FreeSWITCH CSV (its last 2 rows repeat earlier ones)
    assert out.splitlines()[0].startswith("sixminutes replay: 21 CDRs accepted, 24 rejected")
    assert "bad_csv             22" in out and "duplicate            2" in out


def test_the_two_real_xml_cdrs_count_as_two_calls_in_their_window(capsys):
    result = replay(capsys, *(FIXTURES / name for name in XML_FILES))
    assert result["rejected"] == {}
    (window,) = {f["window"] for f in XML_FILES.values()}
    assert list(result["data"]) == [str(window)]
    series = result["data"][str(window)]
    assert series[key("calls", direction="ingress", profile="internal")]["count"] == 2
    expected: dict[str, tuple[int, float]] = {}
    for f in XML_FILES.values():
        for k, (count, total) in expected_series(f).items():
            c, t = expected.get(k, (0, 0))
            expected[k] = (c + count, t + total)
    assert {k: (s["count"], pytest.approx(s["sum"])) for k, s in series.items()} == expected


@pytest.mark.parametrize("name", sorted(NOT_FREESWITCH_CSV))
def test_asterisk_csv_rows_are_each_bad_csv_at_their_line(capsys, name):
    result = replay(capsys, FIXTURES / name)
    rows = NOT_FREESWITCH_CSV[name]
    assert result["data"] == {}
    assert result["rejected"] == {"bad_csv": rows}
    assert [r["where"] for r in result["rejections"]] == \
        [f"{FIXTURES / name}:{n}" for n in range(1, rows + 1)]


def test_not_json_fixtures_are_present():
    assert len(list(FIXTURES.glob("*.xml"))) == 2
    assert sorted(p.name for p in FIXTURES.glob("*.csv")) == sorted([*NOT_FREESWITCH_CSV,
                                                                     FREESWITCH_CSV])


@pytest.mark.parametrize("name", sorted(FILES))
def test_same_file_twice_in_one_run_is_a_duplicate(capsys, name):
    f = FILES[name]
    result = replay(capsys, FIXTURES / name, FIXTURES / name)
    assert result["rejected"] == {"duplicate": 1}
    series = result["data"][str(f["window"])]
    assert series[key("calls", direction=f["direction"], profile=f["profile"])]["count"] == 1
