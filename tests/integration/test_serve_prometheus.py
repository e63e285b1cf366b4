"""contrib/ (Prometheus rules and scrape config, Grafana dashboard) against a real service.

Debian's promtool and prometheus check /metrics, the rules and the config, and a real
Prometheus scrapes a real `sixminutes serve` fed with realistic CDRs, evaluates the rules and
answers every query of the Grafana dashboard. `make test` installs the binaries; without them
these tests skip (and say so), as nothing else can stand in for them.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service_process import (WINDOW, Realistic, ServiceProcess, config_toml, free_port,
                             small_cdr, unique, wait_for, window_of)

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "contrib" / "prometheus"
RULES = PROMETHEUS_DIR / "sixminutes-rules.yml"
RULES_TEST = PROMETHEUS_DIR / "sixminutes-rules_test.yml"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
DASHBOARD = ROOT / "contrib" / "grafana" / "sixminutes-dashboard.json"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
needs_promtool = pytest.mark.skipif(not Path(PROMTOOL).exists(), reason=(
    "promtool is not installed: `make test` installs Debian's prometheus package"))
needs_prometheus = pytest.mark.skipif(not Path(PROMETHEUS).exists(), reason=(
    "prometheus is not installed: `make test` installs Debian's prometheus package"))
# The KPIs of the carrier board, as /metrics names them (sixminutes_last_window_<name>).
KPI_GAUGES = ("calls", "answered_calls", "zero_duration_calls", "network_failure_calls",
              "acd_seconds", "pdd_seconds", "mos")


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], input=stdin.decode() if stdin else None,
                          capture_output=True, text=True, timeout=60)


def _away_from_a_window_boundary(margin: float) -> None:
    """The 'last complete window' moves at every boundary: keep the test clear of one."""
    left = WINDOW - time.time() % WINDOW
    if left < margin:
        time.sleep(left + 0.5)


# -- a busy service: realistic CDRs of 20 carriers, alerts, rejected documents ----------------

class Busy:
    def __init__(self, service: ServiceProcess, source: str) -> None:
        self.service = service
        self.source = source

    def metrics(self) -> str:
        response = self.service.get("/metrics")
        assert response.status_code == 200, response.text
        return response.text

    def names(self) -> set[str]:
        return {sample.name for family in text_string_to_metric_families(self.metrics())
                for sample in family.samples}


@pytest.fixture(scope="module")
def busy(module_serve: Any, _pouchdb_session: Any) -> Busy:
    pouchdb = _pouchdb_session.start()
    db = pouchdb.new_db()
    service = module_serve(couchdb=[f"{pouchdb.url}/{db}"], since="0",
                           config=config_toml(account_metrics=True))
    realistic = Realistic(seed=6)
    now = int(time.time())
    pouchdb.post_many(db, [realistic.doc(now - 5 - (i * 7) % 1400) for i in range(400)])
    pouchdb.put(db, {"_id": "_design/views"})  # rejected: design_doc
    for i in range(60):
        raw, _ = realistic.raw(now - 5 - (i * 13) % 1400)
        assert service.post_cdr(raw).status_code == 200
    assert service.post_cdr(b"cdr=%ZZ", "application/x-www-form-urlencoded").status_code == 400
    assert service.post_cdr(orjson.dumps({"variables": {"billsec": "3"}})).status_code == 422
    service.wait_caught_up(pouchdb, db)
    busy = Busy(service, service.source()["name"])
    service.wait(lambda: service.status()["snapshots"]["count"] > 0, what="a snapshot")
    return busy


# -- /metrics ----------------------------------------------------------------------------------

@needs_promtool
def test_promtool_check_metrics_finds_nothing_to_complain_about_on_a_busy_service(busy):
    text = busy.metrics()
    # the scrape really holds what a busy platform shows: carriers, alerts, rejections
    assert len(re.findall(r"^sixminutes_last_window_calls\{", text, re.M)) >= 20
    assert re.search(r'^sixminutes_cdrs_total\{outcome="bad_body",source="http"\} 1\.0$',
                     text, re.M)
    assert re.search(r'^sixminutes_cdrs_total\{outcome="design_doc",', text, re.M)
    assert float(re.search(r"^sixminutes_alerts_raised_total (\S+)$", text, re.M)[1]) > 0
    assert re.search(r"^sixminutes_last_window_account_calls\{", text, re.M)
    assert re.search(r"^sixminutes_snapshot_last_success_timestamp_seconds ", text, re.M)
    checked = promtool("check", "metrics", stdin=text.encode())
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_snapshot_metrics_follow_the_service_snapshots(busy):
    text = busy.metrics()
    status = busy.service.status()["snapshots"]
    saved = float(re.search(r"^sixminutes_snapshots_total (\S+)$", text, re.M)[1])
    assert 0 < saved <= busy.service.status()["snapshots"]["count"]
    assert re.search(r"^sixminutes_snapshot_failing 0\.0$", text, re.M)
    last = float(re.search(r"^sixminutes_snapshot_last_success_timestamp_seconds (\S+)$",
                           text, re.M)[1])
    assert status["last_at"] - 30 < last <= time.time()
    assert re.search(r"^sixminutes_plugin_load_errors 0\.0$", text, re.M)


# -- the contrib files: promtool, and names that really exist ----------------------------------

@needs_promtool
def test_promtool_checks_the_rules_and_the_scrape_config():
    rules = promtool("check", "rules", str(RULES))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(_rule_names(RULES.read_text()))} rules found" in rules.stdout
    config = promtool("check", "config", str(CONFIG))
    assert config.returncode == 0, config.stdout + config.stderr
    assert "SUCCESS: 1 rule files found" in config.stdout  # the rules file, next to it


@needs_promtool
def test_the_rules_unit_tests_pass():
    """contrib/prometheus/sixminutes-rules_test.yml: each alert fires on the series that should
    raise it, with its labels and texts, and not on neighbours (too few calls, ...)."""
    tested = promtool("test", "rules", str(RULES_TEST))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def _rule_names(text: str) -> list[str]:
    return re.findall(r"^\s*- (?:record|alert): *(\S+)", text, re.M)


def rule_expressions(text: str) -> list[str]:
    """The `expr:` values of a rules file, inline or as an indented `|` block."""
    expressions, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)expr: *(.*)$", line)
        if not match:
            continue
        if match[2].strip() not in ("|", ">", "|-", ">-"):
            expressions.append(match[2])
            continue
        indent, block = len(match[1]), []
        for following in lines[i + 1:]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            block.append(following.strip())
        expressions.append("\n".join(block))
    return expressions


def dashboard_expressions(dashboard: dict) -> list[str]:
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found.append(query["query"] if isinstance(query, dict) else query)
    return found


def metric_names(expression: str) -> set[str]:
    """sixminutes metric and recording rule names in a PromQL expression (strings left out)."""
    code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    return {token for token in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", code)
            if "sixminutes_" in token}


def test_every_metric_the_rules_and_the_dashboard_use_is_exposed_or_recorded(busy):
    exposed = busy.names()
    text = RULES.read_text()
    recorded = {name for name in _rule_names(text) if ":" in name}
    assert len(recorded) >= 6
    used_by_rules = set().union(*map(metric_names, rule_expressions(text)))
    used_by_dashboard = set().union(*map(metric_names, dashboard_expressions(
        json.loads(DASHBOARD.read_text()))))
    # (the parsing finds what is there: both use the KPIs, the CDR counter, the health gauges)
    for used in (used_by_rules, used_by_dashboard):
        assert {"sixminutes_cdrs_total", "sixminutes_last_window_calls",
                "sixminutes_plugin_errors_total",
                "sixminutes_snapshot_last_success_timestamp_seconds"} <= used
    assert "sixminutes_incidents_firing" in used_by_rules  # the carrier alert: sixminutes' verdict
    assert {f"sixminutes_last_window_{kpi}" for kpi in KPI_GAUGES} <= used_by_dashboard
    unknown = {name for name in used_by_rules | used_by_dashboard
               if name not in exposed and name not in recorded}
    assert not unknown, f"not in /metrics nor recorded by the rules: {sorted(unknown)}"


# -- the Grafana dashboard ---------------------------------------------------------------------

def test_the_grafana_dashboard_has_a_panel_per_kpi_and_uses_the_datasource_variable():
    raw = DASHBOARD.read_text()
    dashboard = json.loads(raw)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    profile = variables["profile"]
    assert profile["datasource"]["uid"] == "${DS_PROMETHEUS}"
    assert re.fullmatch(r"label_values\(sixminutes_last_window_calls, *profile\)",
                        profile["query"] if isinstance(profile["query"], str)
                        else profile["query"]["query"])
    # no hard-coded data source: every "uid" is the variable (or Grafana's built-in annotations)
    uids = set(re.findall(r'"uid": "([^"]*)"', raw)) - {"sixminutes"}  # (the dashboard's own)
    assert uids == {"${DS_PROMETHEUS}", "-- Grafana --"}
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, \
            panel["title"]
        assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for t in panel["targets"])
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    _no_overlap(dashboard["panels"])

    def uses(panel: dict, kpi: str) -> bool:
        return any(f"sixminutes_last_window_{kpi}{{" in t["expr"] for t in panel["targets"])

    board = [p for p in panels if p["type"] == "table"]
    assert len(board) == 1 and all(uses(board[0], kpi) for kpi in KPI_GAUGES)
    series = [p for p in panels if p["type"] == "timeseries"]
    for kpi in KPI_GAUGES:
        carrier_panels = [p for p in series if uses(p, kpi)]
        assert carrier_panels, f"no 24-hour panel for {kpi}"
        assert all('profile=~"$profile"' in t["expr"] for p in carrier_panels for t in p["targets"])
    health = " ".join(t["expr"] for p in panels for t in p["targets"])
    for name in ("sixminutes_cdrs_total", "sixminutes_source_connected", "sixminutes_source_lag",
                 "sixminutes_plugin_errors_total"):
        assert name in health, name
    assert dashboard["time"]["from"] == "now-24h"


def _no_overlap(panels: list[dict]) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in panels:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


# -- a real Prometheus scraping the real service -----------------------------------------------

class Prometheus:
    """/usr/bin/prometheus on a free port, scraping one target every second."""

    def __init__(self, workdir: Path, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        rules = workdir / "sixminutes-rules.yml"
        shutil.copy(RULES, rules)
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {rules}\n"
            "scrape_configs:\n  - job_name: sixminutes\n    metrics_path: /metrics\n"
            f"    static_configs:\n      - targets: ['{target}']\n")
        self.log = workdir / "prometheus.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        self.http = httpx.Client(base_url=self.url, timeout=10.0)
        wait_for(lambda: self.process.poll() is not None or
                 self.http.get("/-/ready").status_code == 200, 30, "prometheus to be ready")
        assert self.process.poll() is None, self.log.read_text()

    def query(self, expression: str) -> list[dict]:
        response = self.http.get("/api/v1/query", params={"query": expression})
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (expression, body)
        return body["data"]["result"]

    def value(self, expression: str, **labels: str) -> float | None:
        for item in self.query(expression):
            if all(item["metric"].get(k) == v for k, v in labels.items()):
                return float(item["value"][1])
        return None

    def close(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Any]:
    started: list[Prometheus] = []

    def start(target: str) -> Prometheus:
        started.append(Prometheus(tmp_path, target))
        return started[-1]

    yield start
    for p in started:
        p.close()


@needs_prometheus
def test_prometheus_scrapes_the_service_and_answers_the_rules_and_dashboard_queries(
        busy, prometheus):
    _away_from_a_window_boundary(40)
    service = busy.service
    last = window_of(time.time()) - WINDOW
    carrier = unique("prom")
    # carrier egress in the last complete window: 4 calls, 1 answered (60 s, MOS 4.2),
    # 1 SIP 503 (a network failure), 3 of billsec 0, PDD 1.5 s each
    for k in range(4):
        answered = k == 0
        extra = {"rtp_audio_in_mos": "4.2"} if answered else {}
        response = service.post_cdr(orjson.dumps(small_cdr(
            last + 10 + k, profile=carrier, direction="egress",
            billsec="60" if answered else "0", answer_epoch=str(last) if answered else "0",
            sip_term_status="200" if answered else "503" if k == 1 else "486",
            progress_mediamsec="1500", **extra)))
        assert response.status_code == 200, response.text
    server = prometheus(f"127.0.0.1:{service.port}")
    wait_for(lambda: server.value("sixminutes_last_window_calls", profile=carrier,
                                  direction="egress") is not None, 30,
             "Prometheus to scrape the carrier's calls",
             diagnostics=lambda: server.log.read_text()[-3000:])
    assert server.value("sixminutes_last_window_calls", profile=carrier, direction="egress") == 4
    assert server.value("sixminutes_last_window_timestamp_seconds") == last
    assert server.value("up", job="sixminutes") == 1
    # a recording rule, evaluated by Prometheus from the scraped gauges
    asr = "profile_direction:sixminutes_last_window_asr:ratio"
    wait_for(lambda: server.value(asr, profile=carrier) is not None, 30,
             f"{asr} to be recorded", diagnostics=lambda: server.log.read_text()[-3000:])
    assert server.value(asr, profile=carrier, direction="egress") == 0.25
    assert server.value("profile_direction:sixminutes_last_window_network_failure:ratio",
                        profile=carrier, direction="egress") == 0.25
    # every rule of the file is loaded and evaluates without error on real data
    rules = [r for group in server.http.get("/api/v1/rules").json()["data"]["groups"]
             for r in group["rules"]]
    assert sorted(r["name"] for r in rules) == sorted(_rule_names(RULES.read_text()))

    def evaluated() -> list[dict]:
        found = [r for group in server.http.get("/api/v1/rules").json()["data"]["groups"]
                 for r in group["rules"]]
        return found if all(r["health"] != "unknown" for r in found) else []

    for rule in wait_for(evaluated, 10, "every rule to be evaluated"):
        assert rule["health"] == "ok" and not rule.get("lastError"), rule
    # the dashboard's queries, as Grafana sends them for this carrier
    expected = {"calls": 4, "answered_calls": 0.25, "zero_duration_calls": 0.75,
                "network_failure_calls": 0.25, "acd_seconds": 60, "pdd_seconds": 1.5, "mos": 4.2}
    seen = set()
    for expression in dashboard_expressions(json.loads(DASHBOARD.read_text())):
        query = expression.replace("$profile", carrier).replace(
            "$__rate_interval", "1m")
        if query.startswith("label_values("):
            continue
        result = server.query(query)  # asserts Prometheus accepts it
        kpi = re.search(r"sixminutes_last_window_(\w+?)\{", query)
        if kpi and kpi[1] in expected and 'direction' in query.split("by (")[-1]:
            got = [float(r["value"][1]) for r in result
                   if r["metric"] == {"profile": carrier, "direction": "egress"}]
            assert got == [pytest.approx(expected[kpi[1]])], (query, result)
            seen.add(kpi[1])
    assert seen == set(expected)
    assert window_of(time.time()) - WINDOW == last, "crossed a window boundary mid-test"
