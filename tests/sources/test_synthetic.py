"""The synthetic CDR generator: valid, realistic in shape and outcome, true to its Truth.

The decoding below follows DESIGN.md's table directly (plain urllib, no sixminutes code),
so a mismatch points at the generator, not at the engine.
"""
from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from urllib.parse import unquote

import orjson
import pytest

from sixminutes.direction import normal_direction
from sixminutes.sources.synthetic import ODD_ACCOUNTS, Generator, Truth, encode

START = 1_700_000_000  # 2023-11-14 22:13:20 UTC


@pytest.fixture(scope="module")
def corpus() -> list[tuple[bytes, Truth]]:
    return list(Generator(seed=7).corpus(4000, START))


def _first(v: dict[str, str], *names: str) -> str | None:
    for name in names:
        if v.get(name):
            return v[name]
    return None


def _int(v: dict[str, str], name: str) -> int:
    return int(v.get(name) or 0)


def expected(doc: dict) -> dict:
    """The Call fields of DESIGN.md, decoded straight from a document."""
    v = {k: unquote(x) for k, x in doc["variables"].items()}
    media, progress = _int(v, "progress_mediamsec"), _int(v, "progressmsec")
    mos = v.get("rtp_audio_in_mos")
    return {
        "uuid": v["uuid"],
        "profile": _first(v, "ccnq_profile", "sip_gateway_name", "sofia_profile_name") or "unknown",
        "direction": normal_direction(_first(v, "ccnq_direction", "direction") or "unknown"),
        "account": _first(v, "ccnq_account", "accountcode") or "unknown",
        "from_": _first(v, "ccnq_from_e164", "sip_from_user"),
        "to": _first(v, "ccnq_to_e164", "sip_to_user"),
        "end_epoch": int(v["end_epoch"]),
        "billsec": _int(v, "billsec"),
        "duration": _int(v, "duration"),
        "answered": _int(v, "answer_epoch") > 0 or _int(v, "billsec") > 0,
        "sip_code": _first(v, "sip_term_status", "sip_invite_failure_status") or "none",
        "hangup_cause": v.get("hangup_cause") or "none",
        "q850": v.get("hangup_cause_q850"),
        "pdd_ms": media if media > 0 else progress if progress > 0 else None,
        "mos": float(mos) if mos and math.isfinite(float(mos)) else None,
    }


def test_every_document_is_valid_compact_json_without_duplicate_keys(corpus):
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), [k for k, n in Counter(keys).items() if n > 1]
        return dict(pairs)

    for raw, _ in corpus:
        assert b"\n" not in raw and b": " not in raw[:200]
        doc = orjson.loads(raw)
        assert doc == json.loads(raw, object_pairs_hook=no_duplicates)


def test_shape_is_that_of_mod_json_cdr(corpus):
    for raw, truth in corpus[:500]:
        doc = orjson.loads(raw)
        assert {"core-uuid", "switchname", "channel_data", "callStats", "variables",
                "app_log", "callflow"} <= doc.keys()
        assert all(isinstance(x, str) for x in doc["variables"].values())
        assert 1 <= len(doc["callflow"]) <= 2
        assert all({"caller_profile", "times"} <= flow.keys() for flow in doc["callflow"])
        assert len(doc["app_log"]["applications"]) >= 3
        rtp = [k for k in doc["variables"] if k.startswith("rtp_audio_")]
        if "rtp_audio_in_mos" in doc["variables"]:
            assert len(rtp) >= 27
            assert "mos" in doc["callStats"]["audio"]["inbound"] or truth.mos is None
        if truth.answered:
            assert "rtp_audio_in_mos" in doc["variables"] and "switch_r_sdp" in doc["variables"]


def test_values_are_url_encoded_like_freeswitch(corpus):
    seen = Counter()
    for raw, _ in corpus[:1000]:
        for key, value in orjson.loads(raw)["variables"].items():
            assert encode(unquote(value)) == value, (key, value)
            seen.update(token for token in ("%40", "%3A", "%20", "%0D%0A") if token in value)
    assert all(seen[token] > 100 for token in ("%40", "%3A", "%20", "%0D%0A")), seen


def test_sizes_look_like_real_cdrs(corpus):
    sizes = [len(raw) for raw, _ in corpus]
    assert 8_000 <= statistics.mean(sizes) <= 12_000
    assert max(sizes) - min(sizes) > 3_000  # answered calls with RTP and SDP are bigger


def test_same_seed_same_documents_other_seed_others():
    a = list(Generator(seed=3).corpus(300, START))
    assert a == list(Generator(seed=3).corpus(300, START))
    assert [raw for raw, _ in a] != [raw for raw, _ in Generator(seed=4).corpus(300, START)]


def test_documents_decode_to_their_truth(corpus):
    for raw, truth in corpus:
        got = expected(orjson.loads(raw))
        want = {k: getattr(truth, k) for k in got}
        assert got == want, truth.uuid
    assert len({t.uuid for _, t in corpus}) == len(corpus)


def test_outcome_mix_is_realistic(corpus):
    truths = [t for _, t in corpus]
    asr = sum(t.answered for t in truths) / len(truths)
    assert 0.55 <= asr <= 0.70
    codes = Counter(t.sip_code for t in truths)
    assert {"200", "486", "480", "487", "404", "603", "408", "503", "500", "none"} <= codes.keys()
    billsec = sorted(t.billsec for t in truths if t.billsec > 0)
    assert billsec[len(billsec) // 10] < 6 and billsec[-1] > 1800  # many short, some long
    assert statistics.mean(billsec) > 1.5 * statistics.median(billsec)  # heavy tail
    pdd = [t.pdd_ms for t in truths if t.pdd_ms]
    assert 0.8 <= sum(1000 <= p <= 6000 for p in pdd) / len(pdd)
    mos = [t.mos for t in truths if t.mos and t.profile != "kestrel"]
    assert 0.8 <= sum(4.1 <= m <= 4.5 for m in mos) / len(mos)
    assert len({(t.profile, t.direction) for t in truths}) >= 40
    assert len({t.account for t in truths}) > 1000


def test_troubled_carrier_has_worse_outcomes(corpus):
    def kpis(truths: list[Truth]) -> tuple[float, float, float, float]:
        n = len(truths)
        return (sum(t.answered for t in truths) / n,
                sum(t.sip_code in ("502", "503") for t in truths) / n,
                sum(t.billsec == 0 for t in truths) / n,
                statistics.mean(t.mos for t in truths if t.mos is not None))

    bad = kpis([t for _, t in corpus if t.profile == "kestrel"])
    good = kpis([t for _, t in corpus if t.profile != "kestrel"])
    assert bad[0] < good[0] - 0.2 and bad[1] > good[1] + 0.2
    assert bad[2] > good[2] + 0.2 and bad[3] < good[3] - 0.5
    other = Generator(seed=7, troubled=("vega",))
    assert [c.name for c in other.carriers if c.troubled] == ["vega"]


def test_fallback_only_documents_exercise_every_fallback(corpus):
    fallback = [(orjson.loads(raw)["variables"], t) for raw, t in corpus if t.fallback]
    assert 0.07 <= len(fallback) / len(corpus) <= 0.13
    for v, t in fallback:
        assert not any(k.startswith("ccnq_") for k in v)
    assert any("sip_gateway_name" in v for v, _ in fallback)
    assert any("sip_gateway_name" not in v and unquote(v["sofia_profile_name"]) == t.profile
               for v, t in fallback)
    assert {unquote(v["direction"]) for v, _ in fallback} == {"inbound", "outbound"}  # FreeSWITCH's
    assert {t.direction for _, t in fallback} == {"ingress", "egress"}  # ... mapped onto ccnq's
    assert any(t.account == "unknown" for _, t in fallback)
    # ccnq3 documents carry fallbacks too, which must lose
    assert any("accountcode" in orjson.loads(raw)["variables"] for raw, t in corpus if not t.fallback)


def test_sip_code_sometimes_only_in_hangup_cause(corpus):
    sources = Counter()
    for raw, t in corpus:
        v = orjson.loads(raw)["variables"]
        sources[("sip_term_status" in v, "sip_invite_failure_status" in v)] += 1
    assert all(sources[key] > 20 for key in [(True, True), (True, False), (False, True), (False, False)])
    assert any(t.sip_code == "none" and t.q850 in {"27", "34", "38", "41", "42", "102"} for _, t in corpus)


def test_odd_account_names_round_trip(corpus):
    seen = {t.account for _, t in corpus}
    assert len(seen & set(ODD_ACCOUNTS)) >= 6


def test_cdr_and_corpus_place_end_epochs():
    gen = Generator(seed=1)
    raw, truth = gen.cdr(1_700_000_123)
    assert truth.end_epoch == 1_700_000_123
    assert orjson.loads(raw)["variables"]["end_epoch"] == "1700000123"
    epochs = [t.end_epoch for _, t in gen.corpus(500, START, span=3600)]
    assert epochs == sorted(epochs) and START <= epochs[0] and epochs[-1] < START + 3600


def test_troubled_share_sets_the_share_of_calls_of_the_carriers_in_trouble():
    gen = Generator(seed=5, troubled_share=0.1)
    truths = [t for _, t in gen.corpus(5000, START)]
    share = sum(t.profile == "kestrel" for t in truths) / len(truths)
    assert 0.085 <= share <= 0.115
    healthy = Generator(seed=5, troubled_share=0.1, troubled=())  # nobody in trouble: no change
    assert [t for _, t in healthy.corpus(200, START)] == \
        [t for _, t in Generator(seed=5, troubled=()).corpus(200, START)]
