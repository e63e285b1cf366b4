"""The JSON API of a running service: mutations need the token, DELETE ?before= deletes only
what is older, POST /6minutes/restart reloads plugins and reports broken ones, and
GET /6minutes/data filters by time, name and labels with exact results."""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from helpers import builtins
from service_process import WINDOW, config_toml, small_cdr, unique, window_of

TOKEN = "api-token-1"


def _windows(n: int) -> list[int]:
    """n consecutive complete windows, an hour ago and later (far from retention and 'now')."""
    first = window_of(time.time()) - 10 * WINDOW
    return [first + i * WINDOW for i in range(n)]


def _post(service, doc: dict) -> None:
    response = service.post_cdr(orjson.dumps(doc))
    assert response.status_code == 200 and response.json()["outcome"] == "accepted", response.text


def _alerting_traffic(service, windows: list[int], profile: str) -> None:
    """In each window: 2 calls, one answered, one 503 (an unexpected_sip alert)."""
    for t in windows:
        _post(service, small_cdr(t + 10, profile=profile, billsec="30", answer_epoch=str(t),
                                 sip_term_status="200"))
        _post(service, small_cdr(t + 20, profile=profile, sip_term_status="503"))


MUTATIONS = [
    ("DELETE", "/6minutes/data", None),
    ("DELETE", "/6minutes/alerts", None),
    ("POST", "/6minutes/restart", None),
    ("POST", "/6minutes/cdr", "cdr"),
]


@pytest.mark.parametrize("method, path, body", MUTATIONS, ids=[f"{m} {p}" for m, p, _ in MUTATIONS])
def test_every_mutation_is_refused_without_the_token_and_accepted_with_it(serve, method, path,
                                                                          body):
    service = serve(token=TOKEN, config=config_toml())
    windows = _windows(2)
    _alerting_traffic(service, windows, "p1")
    before = (service.data(), service.alerts())
    content = orjson.dumps(small_cdr(profile="p2")) if body else None
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic Og=="}):
        response = service.http.request(method, path, content=content, headers={
            **headers, "Content-Type": "application/json"})
        assert response.status_code == 401, (method, path, headers, response.text)
        assert response.json()["error"] == "http_401"
    assert (service.data(), service.alerts()) == before  # nothing changed

    response = service.http.request(method, path, content=content, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["ok"] is True
    if path == "/6minutes/data":
        assert answer["windows_deleted"] == 2 and service.data() == {}
        assert service.alerts() == before[1]
    elif path == "/6minutes/alerts":
        assert answer["alerts_deleted"] == 2 and service.alerts() == []
        assert service.data() == before[0]
    elif path == "/6minutes/restart":
        assert {"kpis", "codes", "accounts", "unexpected_sip"} <= set(answer["plugins"])
    else:
        assert answer["outcome"] == "accepted" and service.total(profile="p2") == 1


def test_delete_before_deletes_only_older_windows_and_alerts_and_it_survives_a_restart(serve):
    service = serve(token=TOKEN, config=config_toml())
    w = _windows(4)
    _alerting_traffic(service, w, "p1")
    auth = service.auth_headers()
    assert sorted(map(int, service.data())) == w
    assert sorted(a["timestamp"] for a in service.alerts()) == w

    response = service.http.delete("/6minutes/data", params={"before": w[2]}, headers=auth)
    assert response.json() == {"ok": True, "windows_deleted": 2}
    assert sorted(map(int, service.data())) == w[2:]
    assert sorted(a["timestamp"] for a in service.alerts()) == w  # alerts are apart

    response = service.http.delete("/6minutes/alerts", params={"before": w[1] + 1},
                                   headers=auth)
    assert response.json() == {"ok": True, "alerts_deleted": 2}
    assert sorted(a["timestamp"] for a in service.alerts()) == w[2:]

    # `before` that is not a number: a 400 that says so, nothing deleted.
    response = service.http.delete("/6minutes/data", params={"before": "yesterday"},
                                   headers=auth)
    assert response.status_code == 400 and "before" in response.json()["message"]
    assert sorted(map(int, service.data())) == w[2:]

    service.restart()
    assert sorted(map(int, service.data())) == w[2:]
    assert sorted(a["timestamp"] for a in service.alerts()) == w[2:]
    assert service.total() == 4

    # Deleted windows stay deleted after a restart, and their CDRs can be counted afresh.
    _alerting_traffic(service, w[:1], "p1")
    assert sorted(map(int, service.data())) == [w[0], *w[2:]]
    assert service.total() == 6


GOOD_PLUGIN = '''\
def plugin(ctx):
    ctx.increment("custom_calls", profile=ctx.profile)
'''
BROKEN_PLUGIN = '''\
def plugin(ctx):
    pass

def oops(:
    pass
'''
RAISING_AT_IMPORT = '''\
import os

raise RuntimeError("cannot start: no licence")
'''


def test_restart_reloads_plugins_and_reports_a_broken_file_with_its_line(serve, tmp_path: Path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "good.py").write_text(GOOD_PLUGIN)
    service = serve(token=TOKEN, config=config_toml(), args=["--plugins", str(plugins)])
    assert service.status()["plugin_load_errors"] == []
    _post(service, small_cdr(profile="p1"))
    assert service.total("custom_calls") == 1

    (plugins / "broken.py").write_text(BROKEN_PLUGIN)
    (plugins / "licence.py").write_text(RAISING_AT_IMPORT)
    (plugins / "good.py").write_text(GOOD_PLUGIN.replace("custom_calls", "custom_calls_v2"))
    response = service.http.post("/6minutes/restart", headers=service.auth_headers())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["ok"] is False
    assert answer["plugins"] == [*builtins(), "good"]
    errors = {Path(e["file"]).name: e for e in answer["errors"]}
    assert set(errors) == {"broken.py", "licence.py"}
    assert errors["broken.py"]["file"] == str(plugins / "broken.py")
    assert errors["broken.py"]["line"] == 4
    assert "SyntaxError" in errors["broken.py"]["error"]
    assert errors["licence.py"]["line"] == 3
    assert "RuntimeError: cannot start: no licence" in errors["licence.py"]["error"]
    assert len(service.status()["plugin_load_errors"]) == 2

    _post(service, small_cdr(profile="p1"))  # the new set runs: the reloaded good.py
    assert service.total("custom_calls") == 1
    assert service.total("custom_calls_v2") == 1
    assert service.total() == 2

    (plugins / "broken.py").unlink()
    (plugins / "licence.py").unlink()
    answer = service.http.post("/6minutes/restart", headers=service.auth_headers()).json()
    assert answer == {"ok": True, "plugins": [*builtins(), "good"], "errors": []}


def test_data_filters_by_time_name_and_labels_exactly(serve):
    service = serve(config=config_toml())
    w = _windows(3)
    tag = unique("f")
    carriers = {f"{tag}-a": 3, f"{tag}-b": 2}
    expected: Counter[tuple[int, str, str, str]] = Counter()  # (window, name, profile, dir)
    n = 0
    for i, t in enumerate(w):
        for profile, base in carriers.items():
            for direction in ("egress", "ingress"):
                calls = base + i + (direction == "egress")
                for k in range(calls):
                    answered = k % 2 == 0
                    doc = small_cdr(t + 1 + k, profile=profile, direction=direction,
                                    billsec="20" if answered else "0",
                                    answer_epoch=str(t) if answered else "0")
                    _post(service, doc)
                    n += 1
                    expected[(t, "calls", profile, direction)] += 1
                    if answered:
                        expected[(t, "answered", profile, direction)] += 1

    def key(name: str, profile: str, direction: str) -> str:
        return f'{name}{{direction="{direction}",profile="{profile}"}}'

    def want(windows, names, profiles=None, directions=None) -> dict:
        result: dict[str, dict[str, int]] = {}
        for (t, name, profile, direction), count in expected.items():
            if (t in windows and name in names and (profiles is None or profile in profiles)
                    and (directions is None or direction in directions)):
                result.setdefault(str(t), {})[key(name, profile, direction)] = count
        return result

    def got(params) -> dict:
        return {t: {k: s["count"] for k, s in series.items()}
                for t, series in service.data(params).items()}

    a, b = list(carriers)
    assert service.total() == n
    assert got([("name", "calls")]) == want(w, {"calls"})
    assert got([("name", "calls"), ("name", "answered")]) == want(w, {"calls", "answered"})
    assert got([("name", "calls"), ("start", w[1])]) == want(w[1:], {"calls"})
    assert got([("name", "calls"), ("end", w[1])]) == want(w[:2], {"calls"})
    assert got([("name", "calls"), ("start", w[1]), ("end", w[1])]) == want([w[1]], {"calls"})
    # start/end fall inside windows: a window is in the range when its start is
    assert got([("name", "calls"), ("start", w[0] + 1), ("end", w[2] - 1)]) == \
        want([w[1]], {"calls"})
    assert got([("name", "calls"), ("profile", a)]) == want(w, {"calls"}, {a})
    assert got([("name", "calls"), ("name", "answered"), ("profile", a),
                ("direction", "egress")]) == want(w, {"calls", "answered"}, {a}, {"egress"})
    assert got([("name", "answered"), ("profile", b), ("direction", "ingress"),
                ("start", w[2])]) == want([w[2]], {"answered"}, {b}, {"ingress"})
    # every series of a profile: the built-ins with a profile label, and nothing else
    everything = service.data([("profile", a), ("direction", "egress"), ("start", w[0]),
                               ("end", w[0])])
    names = {k.split("{")[0] for k in everything[str(w[0])]}
    assert names == {"calls", "answered", "zero_duration", "billsec", "sip_status",
                     "hangup_cause", "destination_calls", "destination_answered",
                     "destination_billsec"}
    assert all(f'profile="{a}"' in k and 'direction="egress"' in k
               for k in everything[str(w[0])])
    # filters that match nothing
    assert service.data([("name", "calls"), ("profile", "no-such-carrier")]) == {}
    assert service.data([("name", "no_such_series")]) == {}
    assert service.data([("name", "calls"), ("start", w[2] + WINDOW)]) == {}
    assert service.data([("account", "acct1"), ("profile", a)]) == {}  # no series has both
    # a bad number is a 400 that says which parameter
    response = service.get("/6minutes/data", params={"start": "monday"})
    assert response.status_code == 400 and "start" in response.json()["message"]


def test_alert_lists_can_leave_the_sample_cdr_out_and_one_alert_brings_it(serve):
    service = serve(token=TOKEN, config=config_toml())
    _alerting_traffic(service, _windows(1), "doc-carrier")
    for _ in range(3):  # (a tick may resolve the alert between the two reads: read again)
        full = service.get("/6minutes/alerts").json()
        light = service.get("/6minutes/alerts", params={"doc": "0"}).json()
        if [a["state"] for a in full] == [a["state"] for a in light]:
            break
    assert len(full) == len(light) == 1
    assert full[0]["doc"]["variables"]["sip_term_status"] == "503"
    assert "doc" not in light[0] and {k: v for k, v in full[0].items() if k != "doc"} == light[0]

    one = service.get(f"/6minutes/alerts/{light[0]['id']}")
    assert one.status_code == 200 and one.json() == full[0]
    missing = service.get("/6minutes/alerts/no-such-id")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_an_empty_before_is_refused_rather_than_deleting_everything(serve):
    service = serve(token=TOKEN, config=config_toml())
    _alerting_traffic(service, _windows(1), "keep-carrier")
    for path in ("/6minutes/data", "/6minutes/alerts"):
        response = service.http.delete(path, params={"before": ""}, headers=service.auth_headers())
        assert response.status_code == 400 and "before" in response.json()["message"]
    assert service.total() == 2 and len(service.alerts()) == 1
    assert service.get("/6minutes/data", params={"start": "inf"}).status_code == 400


def test_baselines_and_destinations_beside_the_data(serve):
    """GET /6minutes/baselines and /6minutes/destinations read what the service counted."""
    service = serve(config=config_toml())
    [t] = _windows(1)
    tag = unique("dest")
    for k in range(3):
        _post(service, small_cdr(t + 1 + k, profile=tag, ccnq_to_e164="33612345678",
                                 billsec="20", answer_epoch=str(t), start_epoch=str(t - 30)))
    _post(service, small_cdr(t + 9, profile=tag, ccnq_to_e164="4915112345678"))
    answer = service.http.get("/6minutes/baselines", params={"window": t, "profile": tag}).json()
    assert answer["window"] == t and answer["name"] == "calls"
    assert [(r["labels"]["profile"], r["value"], r["yesterday"]) for r in answer["series"]] == \
        [(tag, 4, None)]  # (a day ago is before the service's history)
    found = service.http.get("/6minutes/destinations", params={"window": t + 100}).json()
    assert found["window"] == t
    top = {row["country"]: row for row in found["top"]}
    assert top["FR"]["calls"] >= 3 and top["FR"]["asr"] > 0 and top["DE"]["calls"] >= 1
    data = service.http.get("/6minutes/data", params={"start": t - WINDOW, "end": t,
                                                       "name": "peak_concurrent",
                                                       "profile": tag}).json()
    assert data[str(t)][f'peak_concurrent{{direction="egress",profile="{tag}"}}']["max"] == 3
    assert data[str(t - WINDOW)][f'peak_concurrent{{direction="egress",profile="{tag}"}}']["max"] == 3
