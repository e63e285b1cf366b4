"""The live dashboard (GET /6minutes) in a real browser against a real `sixminutes serve`.

Debian's Chromium (`apt-get install chromium`), driven by Playwright for Python without
`playwright install`. One service for the module (each test uses carriers and accounts of its
own), one browser; each test opens a fresh page and fails on any console error or uncaught
exception. Screenshots go to test-artifacts/ at the repository's root.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers import cdr, seed_rules_toml

playwright_api = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

CHROMIUM = os.environ.get("SIXMINUTES_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TOKEN = "T"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WALL = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
LIVE = 15_000  # ms: how long a live update or a page load may take on a slow shared machine

XSS_SCRIPT = "<script>window.__xss=1</script>"
XSS_IMG = '<img src=x onerror="window.__xss=2">'

expect.set_options(timeout=LIVE)

BOOM_PLUGIN = """
def plugin(ctx):
    if ctx.profile == "boom-carrier":
        raise RuntimeError("boom, for the dashboard test")
"""

if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


# -- the service ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """`python -m sixminutes.cli serve` in a subprocess; restart() keeps the port and state."""

    def __init__(self, workdir: Path, token: str | None = TOKEN, args: tuple[str, ...] = (),
                 head: str = "") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "c.toml"
        # the rules fire on one window over the line, as the seed's did: the page's plumbing
        # is under test here, the statistical guard in tests/test_thresholds.py
        # unexpected_sip on any number of calls, at 95 %: five 503s in a window alert
        config.write_text(head + "[serve]\nsnapshot_seconds = 1\n[alerts]\nclear_windows = 1\n"
                          "[plugins.unexpected_sip]\nmin_calls = 1\nconfidence = 0.95\n"
                          + seed_rules_toml())
        plugins = workdir / "plugins"
        plugins.mkdir()
        (plugins / "boom.py").write_text(BOOM_PLUGIN)
        self.plugins = plugins
        self.command = [sys.executable, "-m", "sixminutes.cli", "serve", "--port", str(self.port),
                        "--state", str(workdir / "s.sqlite"), "--config", str(config),
                        "--plugins", str(plugins), *args]
        if token is not None:
            self.command += ["--token", token]
        self.given_token = token
        self.token_file = workdir / "s.sqlite.token"  # where it keeps the one it generates
        self.log = workdir / "service.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SIXMINUTES_")}
        self.http = httpx.Client(base_url=self.url, timeout=10)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=log, env=self.env,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"service exited:\n{self.log.read_text()[-3000:]}"
            try:
                if self.http.get("/6minutes/status", timeout=1,
                                 headers=self.auth() if self.token_known() else {}).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"service did not answer:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def token(self) -> str:
        """The token given with --token, else the one the service generated and keeps."""
        return self.given_token or self.token_file.read_text().strip()

    def token_known(self) -> bool:
        return self.given_token is not None or self.token_file.exists()

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def link(self) -> str:
        """The one-time link the service logged at its (last) start."""
        links = re.findall(r"open (http://\S+/6minutes/#token=\S+)", self.log.read_text())
        assert links, self.log.read_text()[-3000:]
        return links[-1]

    def post(self, doc: dict, status: int = 200) -> None:
        response = self.http.post("/6minutes/cdr", content=json.dumps(doc),
                                  headers={"Content-Type": "application/json", **self.auth()})
        assert response.status_code == status, response.text

    def alerts(self) -> list[dict]:
        return self.http.get("/6minutes/alerts", headers=self.auth()).json()


def settled_end() -> int:
    """An end time a few seconds ago, well inside the current 6-minute window: waits (rarely,
    at most ~30 s) when the window is about to turn, so values stay in the "current" column."""
    while not 6 <= time.time() % 360 <= 335:
        time.sleep(0.5)
    return int(time.time()) - 5


def call(profile: str, account: str = "acct-1", direction: str = "egress", billsec: int = 60,
         end: int | None = None, **variables: str) -> dict:
    """A small CDR of a call that ended a few seconds ago (tests/helpers.py's cdr)."""
    end = int(time.time()) - 5 if end is None else end
    defaults = {"uuid": str(uuid.uuid4()), "ccnq_profile": profile, "ccnq_direction": direction,
                "ccnq_account": account, "end_epoch": str(end), "billsec": str(billsec),
                "duration": str(billsec + 5), "answer_epoch": str(end - billsec) if billsec else "0",
                "progress_mediamsec": "1800", "rtp_audio_in_mos": "4.3",
                "sip_term_status": "200" if billsec else "486"}
    return cdr(**{**defaults, **variables})


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = Service(tmp_path_factory.mktemp("dashboard"))
    svc.start()
    yield svc
    svc.stop()
    svc.http.close()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service started without a token option (it generates one) and with --auth-reads."""
    svc = Service(tmp_path_factory.mktemp("guarded"), token=None, args=("--auth-reads",))
    svc.start()
    yield svc
    svc.stop()
    svc.http.close()


# -- the browser ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Watched:
    """A page with its console errors, uncaught exceptions and requested URLs recorded."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))

    def open(self, service: Service) -> Page:
        self.page.goto(service.url + "/6minutes")
        expect(self.page.locator("#live")).to_have_attribute("data-state", "live", timeout=LIVE)
        return self.page

    def assert_clean(self, allow: str | None = None) -> None:
        errors = [e for e in self.errors if not (allow and re.search(allow, e))]
        assert not errors, "browser errors:\n" + "\n".join(errors)


@pytest.fixture
def watched(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Watched]:
    options = dict(getattr(request, "param", WALL))
    timezone = options.pop("timezone_id", None)
    context = browser.new_context(viewport=options, timezone_id=timezone)
    context.set_default_timeout(LIVE)
    w = Watched(context.new_page())
    yield w
    context.close()


def shot(page: Page, name: str, locator: str | None = None) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    target = page.locator(locator) if locator else page
    target.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def board_row(page: Page, profile: str, direction: str = "egress"):
    return page.locator("#board tbody tr", has=page.locator(".profile", has_text=re.compile(f"^{re.escape(profile)}$"))) \
        .filter(has=page.locator(".dir", has_text=direction))


def alert_rows(page: Page, plugin: str):
    """The rows of the alerts table raised by this plugin (or threshold rule)."""
    return page.locator("#alerts tbody tr", has=page.locator(".plugin", has_text=re.compile(f"^{plugin}( |$)")))


def heat_labels(page: Page) -> list[str]:
    """The carriers of the heat grid, as plotly drew them (SVG text)."""
    return page.locator("#heat .ytick text").all_text_contents()


def wait_heat(page: Page, label: str) -> None:
    expect(page.locator("#heat .ytick text", has_text=label).first).to_be_attached(timeout=LIVE)


# -- tests ---------------------------------------------------------------------------------------

def test_fills_from_history_then_follows_live(service: Service, watched: Watched) -> None:
    """CDRs posted before the page opens are on the board and in the heat grid; a CDR posted
    while it is open shows up without a reload; every request stays on the service (offline)."""
    end = settled_end()
    for i in range(5):
        service.post(call("hist-carrier", account="hist-acct", billsec=0 if i < 2 else 90, end=end))
        service.post(call("thin-carrier", account="thin-acct", billsec=0, end=end))
    page = watched.open(service)
    row = board_row(page, "hist-carrier")
    expect(row).to_have_count(1)
    # 5 calls, all of zero duration: fewer than any rule's minimum, so no verdict, no pill
    thin = board_row(page, "thin-carrier")
    expect(thin.locator("td.kpi").nth(3).locator(".cur")).to_have_text("100%")
    expect(thin.locator("td.kpi.v-weak, td.kpi.v-bad")).to_have_count(0)
    for judged in (1, 2, 3):  # ASR, NER, zero-duration
        expect(thin.locator("td.kpi").nth(judged)).to_have_class(re.compile(r"\bv-none\b"))
    expect(thin.locator(".pill")).to_have_count(0)
    expect(page.locator("#trouble")).to_be_hidden()
    expect(row.locator("td.kpi").first.locator(".cur")).to_have_text("5")  # calls
    expect(row.locator("td.kpi").nth(3).locator(".cur")).to_have_text("40%")  # zero-duration
    wait_heat(page, "hist-carrier · egress")
    expect(page.locator("#accounts-busy")).to_contain_text("hist-acct")
    # The chart of a chosen carrier and KPI: 2 of 5 calls with zero duration in this window.
    page.select_option("#chart-carrier", label="hist-carrier · egress")
    page.select_option("#chart-kpi", "zero")
    page.wait_for_function("() => document.getElementById('chart').data?.[0].y.includes(0.4)")
    page.click("#heat-kpis button[data-kpi='asr']")
    # (on 5 calls, too few to alert: in the faded layer of the grid)
    page.wait_for_function("() => document.getElementById('heat').data?.[1].z.flat().includes(0.6)")

    page.evaluate("window.__loaded = 'once'")
    service.post(call("live-carrier", account="live-acct"))
    expect(board_row(page, "live-carrier")).to_have_count(1)
    service.post(call("hist-carrier", account="hist-acct", end=end))
    expect(row.locator("td.kpi").first.locator(".cur")).to_have_text("6")
    assert page.evaluate("window.__loaded") == "once", "the page reloaded"
    assert any(u.endswith("/6minutes/static/vendor/plotly.min.js") for u in watched.requests)
    foreign = [u for u in watched.requests if not u.startswith(service.url)]
    assert not foreign, f"requests outside the service: {foreign}"
    shot(page, "board-1366x768")
    watched.assert_clean()


def test_alerts_arrive_live_and_show_their_sample_cdr(service: Service, watched: Watched) -> None:
    page = watched.open(service)
    # One unexpected SIP code is counted, not alerted; five of a carrier's calls in a window
    # are evidence enough: the unexpected_sip plugin raises its alert.
    sip_end = settled_end()
    failed_uuids = set()
    for _ in range(5):
        failed = call("sip-carrier", account="sip-acct", billsec=0, sip_term_status="503",
                      end=sip_end)
        failed_uuids.add(failed["variables"]["uuid"])
        # (the alert's sample is the first CDR of the batch that made the code evident: the
        # fifth, or an earlier one when the POSTs were counted together)
        service.post(failed)
    row = page.locator("#alerts tbody tr", has_text="sip-carrier (egress): unexpected SIP 503")
    expect(row).to_have_count(1)
    # about a carrier: no account, though the CDRs that raised it had one (honest attribution)
    expect(row.locator(".account")).to_have_text("")
    expect(row).to_contain_text("unexpected_sip")
    # The same alert again: its count goes up in place. (By how many CDRs raised it: the
    # ones counted in the batch that made the code evident, one or several as the POSTs
    # were counted together.)
    raised = int(row.locator(".count").inner_text())
    service.post(call("sip-carrier", account="sip-acct", billsec=0, sip_term_status="503",
                      end=sip_end))
    expect(row.locator(".count")).to_have_text(str(raised + 1))
    expect(page.locator("#alerts tbody tr", has_text="sip-carrier (egress): unexpected SIP 503")).to_have_count(1)

    # 24 zero-duration calls of one carrier: the zero_duration_ratio rule fires (checked every second).
    end = settled_end()
    for _ in range(24):
        service.post(call("zero-carrier", account="zero-acct", billsec=0, end=end))
    rule_row = alert_rows(page, "zero_duration_ratio").filter(has_text="zero-carrier")
    expect(rule_row).to_have_count(1)
    # ... and its incident, live, in the incidents panel (one per rule and labels)
    incident = page.locator("#incidents tbody tr", has_text="zero-carrier").filter(has_text="zero_duration_ratio")
    expect(incident).to_have_count(1)
    expect(incident.locator(".state")).to_have_text("firing")
    expect(incident.locator(".windows")).to_have_text("1 window")
    expect(alert_rows(page, "account_zero_duration_ratio").filter(has_text="zero-acct")).to_have_count(1)
    # The carrier stands out: in the trouble banner and flagged on the board.
    expect(page.locator("#trouble")).to_contain_text("zero-carrier")
    expect(board_row(page, "zero-carrier").locator(".pill")).to_have_text("trouble")
    expect(board_row(page, "zero-carrier").locator("td.kpi.v-bad")).not_to_have_count(0)

    # Filters: text, profile, account.
    page.fill("#alert-text", "unexpected SIP 503")
    expect(rule_row).to_have_count(0)
    expect(row).to_have_count(1)
    page.fill("#alert-text", "")
    page.select_option("#alert-profile", "zero-carrier")
    expect(row).to_have_count(0)
    expect(rule_row).to_have_count(1)
    page.select_option("#alert-profile", "")
    page.select_option("#alert-account", "zero-acct")
    expect(page.locator("#alerts tbody tr")).to_have_count(1)
    expect(alert_rows(page, "account_zero_duration_ratio")).to_have_count(1)
    page.select_option("#alert-account", "")

    # A click shows the sample CDR, pretty-printed.
    row.click()
    dialog = page.locator("#doc-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#doc-json")).to_contain_text('"uuid": "')
    shown = json.loads(dialog.locator("#doc-json").text_content())
    assert shown["variables"]["uuid"] in failed_uuids
    assert "\n  " in dialog.locator("#doc-json").text_content(), "not pretty-printed"
    shot(page, "alert-sample-cdr")
    dialog.locator("button[data-close]").click()
    expect(dialog).to_be_hidden()
    shot(page, "alerts-1366x768", ".alerts-panel")
    shot(page, "dashboard-1366x768")
    watched.assert_clean()


def test_an_alert_shows_firing_then_resolved_live_when_its_carrier_recovers(
        service: Service, watched: Watched) -> None:
    while time.time() % 360 < 32:  # the previous window must be complete (30 s of grace)
        time.sleep(0.5)
    current = int(time.time()) - int(time.time()) % 360
    bad = current - 720  # the window before last: the next one is complete, with no calls yet
    page = watched.open(service)
    for _ in range(22):
        service.post(call("life-carrier", account="life-acct", billsec=0, end=bad + 100))
    row = alert_rows(page, "zero_duration_ratio").filter(has_text="life-carrier")
    expect(row.locator(".pill")).to_have_text("firing")
    expect(row).not_to_have_class(re.compile("state-resolved"))
    for _ in range(22):  # the next window's calls are answered: the rule resolves, live
        service.post(call("life-carrier", account="life-acct", billsec=60, end=bad + 460))
    expect(row.locator(".pill")).to_have_text("resolved")
    expect(row).to_have_class(re.compile("state-resolved"))
    page.select_option("#alert-state", "firing")
    expect(row).to_have_count(0)
    page.select_option("#alert-state", "resolved")
    expect(row).to_have_count(1)
    row.click()
    expect(page.locator("#doc-meta")).to_contain_text("recovered")
    shot(page, "alert-resolved")
    page.keyboard.press("Escape")
    page.select_option("#alert-state", "")
    watched.assert_clean()


def test_cdr_strings_are_text_never_markup(service: Service, watched: Watched) -> None:
    profile = f"x{XSS_IMG}"
    account = f"{XSS_SCRIPT}{XSS_IMG}"
    doc = None
    for _ in range(6):
        doc = call(profile, account=account, billsec=0, sip_term_status="503",
                   caller_id_name=XSS_SCRIPT, ccnq_from_e164=XSS_IMG, sip_from_user=XSS_SCRIPT)
        service.post(doc)
    page = watched.open(service)
    accounts = page.locator("#accounts-zero")
    expect(accounts).to_contain_text(account)  # the literal text, visible
    expect(board_row(page, profile)).to_have_count(1)
    wait_heat(page, profile)  # plotly's labels too (it reads <b>, <a> … in strings)
    alert = page.locator("#alerts tbody tr", has_text=f"{profile} (egress): unexpected SIP 503")
    expect(alert).to_have_count(1)
    expect(alert.locator(".profile")).to_contain_text(profile)
    alert.click()
    text = page.locator("#doc-json").text_content()
    for payload in (XSS_SCRIPT, XSS_IMG, account):
        assert json.dumps(payload)[1:-1] in text, payload
    expect(page.locator("#doc-title")).to_have_text(f"{profile} (egress): unexpected SIP 503")
    page.keyboard.press("Escape")
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("document.querySelectorAll('img, script:not([src])').length") == 0
    watched.assert_clean()


def test_carriers_and_accounts_named_like_object_properties_are_ordinary_rows(
        service: Service, watched: Watched) -> None:
    names = ["__proto__", "constructor", "toString", "hasOwnProperty"]
    end = settled_end()
    for name in names:
        for _ in range(30):  # more than any other account: in the top ten
            service.post(call(name, account=name, end=end))
    page = watched.open(service)
    for name in names:
        expect(board_row(page, name)).to_have_count(1)
        expect(board_row(page, name).locator("td.num").first).to_contain_text("30")
        expect(page.locator("#accounts-busy")).to_contain_text(name)
    watched.assert_clean()


def test_keyboard_sorts_and_opens_alerts(service: Service, watched: Watched) -> None:
    service.post(call("kbd-carrier", account="kbd-acct", billsec=0, sip_term_status="502"))
    page = watched.open(service)
    expect(page.locator("#alerts tbody tr").first).to_be_attached()
    expect(board_row(page, "kbd-carrier")).to_have_count(1)

    def tab_to(selector: str, limit: int = 80) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate("(s) => document.activeElement.matches(s)", selector):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("#board thead button.sort")
    outline = page.evaluate("parseFloat(getComputedStyle(document.activeElement).outlineWidth)")
    assert outline >= 2, "no visible focus"
    header = page.locator("#board thead th").first
    expect(header).to_have_attribute("aria-sort", "descending")  # trouble first, by default
    page.keyboard.press("Enter")
    expect(header).to_have_attribute("aria-sort", "ascending")
    tab_to("#board thead th[data-col='asr'] button")
    page.keyboard.press("Enter")
    expect(page.locator("#board thead th[data-col='asr']")).to_have_attribute("aria-sort", "ascending")
    page.keyboard.press("Enter")
    expect(page.locator("#board thead th[data-col='asr']")).to_have_attribute("aria-sort", "descending")

    tab_to("#alerts tbody tr")
    focused_id = page.evaluate("document.activeElement.dataset.id")
    page.keyboard.press("Enter")
    expect(page.locator("#doc-dialog")).to_be_visible()
    expect(page.locator("#doc-json")).to_contain_text('"variables"')
    page.keyboard.press("Escape")
    expect(page.locator("#doc-dialog")).to_be_hidden()
    assert page.evaluate("document.activeElement.dataset.id") == focused_id, "focus not returned"
    watched.assert_clean()


def test_status_strip(service: Service, watched: Watched) -> None:
    """Sources, CDRs per second, rejected CDRs by reason and plugin errors, polled."""
    page = watched.open(service)
    strip = page.locator("#status")
    expect(strip).to_contain_text("http")
    expect(strip).to_contain_text("listening")
    expect(strip).to_contain_text("CDR/s")
    service.post(call("status-carrier", end_epoch=None), status=422)  # no end_epoch: rejected
    service.post(call("boom-carrier"))
    expect(strip.locator(".stat", has_text="Rejected")).to_contain_text("bad_end_epoch 1")
    expect(strip.locator(".stat.bad", has_text="Plugin errors")).to_contain_text("boom 1")
    watched.assert_clean()


@pytest.mark.parametrize("watched", [{**PHONE, "timezone_id": "America/New_York"}], indirect=True)
def test_phone_width(service: Service, watched: Watched) -> None:
    service.post(call("phone-carrier", account="phone-acct"))
    page = watched.open(service)
    expect(page.locator("#current-window")).to_contain_text(re.compile(r"E[SD]T|GMT-[45]"))
    page.click("#tz")
    expect(page.locator("#current-window")).to_contain_text("UTC")
    page.click("#tz")
    expect(board_row(page, "phone-carrier")).to_have_count(1)
    wait_heat(page, "phone-carrier · egress")
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate("""[...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > innerWidth + 1 && !e.closest('.table-wrap'))
        .slice(0, 5).map((e) => `${e.tagName}#${e.id}.${e.getAttribute('class')}`)""")
    assert width <= PHONE["width"], f"the page scrolls sideways: {width}px; too wide: {wide}"
    shot(page, "dashboard-390x844")
    watched.assert_clean()


def test_clear_alerts_with_the_token(service: Service, watched: Watched) -> None:
    end = settled_end()
    for _ in range(5):  # evidence enough for an unexpected_sip alert
        service.post(call("clear-carrier", account="clear-acct", billsec=0, sip_term_status="500",
                          end=end))
    page = watched.open(service)
    expect(page.locator("#alerts tbody tr", has_text="clear-carrier")).to_have_count(1)
    page.click("#clear-alerts")
    page.fill("#clear-token", "wrong")
    page.click("#clear-form button[type=submit]")
    expect(page.locator("#clear-error")).to_contain_text("refused")
    assert service.alerts(), "a wrong token cleared the alerts"
    page.fill("#clear-token", TOKEN)
    page.click("#clear-form button[type=submit]")
    expect(page.locator("#clear-dialog")).to_be_hidden()
    expect(page.locator("#alerts tbody tr")).to_have_count(0)
    expect(page.locator("#alerts-empty")).to_be_visible()
    assert service.alerts() == []
    assert page.evaluate("sessionStorage.getItem('sixminutes.token')") == TOKEN
    # The dialog offers the kept token next time.
    page.click("#clear-alerts")
    expect(page.locator("#clear-token")).to_have_value(TOKEN)
    page.keyboard.press("Escape")
    # The 401 of the wrong token is an expected console message.
    watched.assert_clean(allow=r"401")


def test_catches_up_after_the_connection_drops(service: Service, watched: Watched) -> None:
    """The service restarts; the page, kept from reconnecting meanwhile, misses a CDR; once it
    reconnects it refetches and shows it, without a reload."""
    page = watched.open(service)
    page.evaluate("window.__loaded = 'once'")
    page.route("**/6minutes/events", lambda route: route.abort())
    service.restart()
    expect(page.locator("#live")).not_to_have_attribute("data-state", "live")
    service.post(call("after-restart", account="after-acct"))
    page.wait_for_timeout(1500)
    expect(board_row(page, "after-restart")).to_have_count(0)  # only live events or a sync bring it
    page.unroute("**/6minutes/events")
    expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=LIVE * 2)
    expect(board_row(page, "after-restart")).to_have_count(1)
    service.post(call("after-restart-live", account="after-acct"))
    expect(board_row(page, "after-restart-live")).to_have_count(1)
    assert page.evaluate("window.__loaded") == "once", "the page reloaded"
    # Connection errors while the service was down and the events were blocked are expected.
    watched.assert_clean(allow=r"ERR_CONNECTION_REFUSED|ERR_FAILED|ERR_EMPTY_RESPONSE|net::")


# -- the token: the one-time link, or the page asks ---------------------------------------------

def test_opened_by_the_one_time_link_the_page_reads_follows_and_clears(guarded: Service,
                                                                        watched: Watched) -> None:
    """Without a token option and with --auth-reads: the link the service logged gives the page
    the token, which leaves the address at once; the page reads with it (fetch and the event
    stream), keeps it across a reload, and its Clear button works."""
    service = guarded
    service.post(call("link-carrier", account="link-acct", billsec=0, sip_term_status="500"))
    assert service.http.get("/6minutes/data").status_code == 401  # reads need it
    page = watched.page
    page.goto(service.link())
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    assert "token" not in page.url and service.token not in page.url, page.url
    assert page.evaluate("sessionStorage.getItem('sixminutes.token')") == service.token
    expect(board_row(page, "link-carrier")).to_have_count(1)
    service.post(call("link-live", account="link-acct"))  # through the event stream (?token=)
    expect(board_row(page, "link-live")).to_have_count(1)
    page.reload()
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    expect(board_row(page, "link-live")).to_have_count(1)
    page.click("#clear-alerts")
    expect(page.locator("#clear-token")).to_have_value(service.token)
    with page.expect_response(lambda r: r.url.endswith("/6minutes/alerts")
                              and r.request.method == "DELETE") as answer:
        page.click("#clear-form button[type=submit]")
    assert answer.value.status == 200
    assert answer.value.request.headers.get("authorization") == f"Bearer {service.token}"
    expect(page.locator("#clear-dialog")).to_be_hidden()
    expect(page.locator("#alerts tbody tr")).to_have_count(0)
    assert service.alerts() == []
    watched.assert_clean()


def test_without_the_link_the_page_asks_for_the_token(guarded: Service, watched: Watched) -> None:
    service = guarded
    service.post(call("ask-carrier", account="ask-acct"))
    page = watched.page
    asked: list[str] = []

    def answer(dialog) -> None:
        asked.append(dialog.message)
        dialog.accept(service.token)

    page.on("dialog", answer)
    page.goto(service.url + "/6minutes/")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    expect(board_row(page, "ask-carrier")).to_have_count(1)
    assert len(asked) == 1 and "token" in asked[0], asked
    # The refused first read is an expected console message.
    watched.assert_clean(allow=r"401")


def test_a_plugin_file_that_does_not_load_shows_in_the_status_strip(guarded: Service,
                                                                     watched: Watched) -> None:
    service = guarded
    broken = service.plugins / "broken_kpi.py"
    broken.write_text("def plugin(ctx):\n    x = (\n")
    try:
        assert service.http.post("/6minutes/restart", headers=service.auth()).status_code == 200
        page = watched.page
        page.goto(service.link())
        plugins = page.locator("#status .stat", has_text="Plugin errors")
        expect(plugins).to_have_class(re.compile(r"\bbad\b"))
        expect(plugins).to_contain_text("broken_kpi.py not loaded")
        assert "SyntaxError" in (plugins.get_attribute("title") or "")
        broken.unlink()
        assert service.http.post("/6minutes/restart", headers=service.auth()).status_code == 200
        expect(plugins).not_to_contain_text("not loaded")
    finally:
        broken.unlink(missing_ok=True)
    watched.assert_clean()


def test_destinations_panel_shows_the_countries_of_the_last_complete_window(
        service: Service, watched: Watched) -> None:
    now = int(time.time())
    previous_end = now - now % 360 - 30  # in the window before the current one
    for i in range(3):
        service.post(call("dest-carrier", end=previous_end - i, ccnq_to_e164="+2917123456"))
    service.post(call("dest-carrier"))  # (the current window has calls: the previous is complete)
    page = watched.open(service)
    top = page.locator("#destinations-top")
    expect(top.locator("tbody tr", has_text="ER")).to_have_count(1)
    expect(page.locator("#destinations-movers")).to_be_visible()
    page.locator("#destinations-title").scroll_into_view_if_needed()
    shot(page, "destinations")
    watched.assert_clean()


@pytest.fixture(scope="module")
def historied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service that keeps 200 hours of windows: a test plants a week of history in it."""
    svc = Service(tmp_path_factory.mktemp("historied"), head="retention_hours = 200\n")
    svc.start()
    yield svc
    svc.stop()
    svc.http.close()


def test_traffic_panel_shows_each_carriers_change_against_yesterday_and_the_median(
        historied: Service, watched: Watched) -> None:
    """A carrier with 50 calls in the window yesterday and a median of 50 over seven days has
    10 now: "−80 %" against both, first in the panel (drops first); a carrier named with
    markup, 20 calls yesterday and none the days before, has 30 now: "+50 %" against
    yesterday, "new" against its median of 0, and its name shows as text."""
    end = settled_end()
    judged = end - end % 360 - 360  # the last complete window once the current one has a call
    xss = f"x{XSS_IMG}"
    days = {1: 50, 2: 40, 3: 60, 4: 50, 5: 55, 6: 45, 7: 50}
    for day, n in [(0, 10), *days.items()]:
        for i in range(n):
            historied.post(call("base-fall", end=judged - day * 86400 + 5 + i))
    for day, n in ((0, 30), (1, 20)):
        for i in range(n):
            historied.post(call(xss, end=judged - day * 86400 + 5 + i))
    historied.post(call("base-now", end=end))  # (the current window has calls)
    page = watched.open(historied)
    rows = page.locator("#baselines tbody tr")
    fall = rows.filter(has=page.locator(".profile", has_text=re.compile("^base-fall$")))
    expect(fall.locator(".value")).to_have_text("10")
    expect(fall.locator(".yesterday")).to_have_text("50")
    expect(fall.locator(".vs-yesterday")).to_have_text("\u221280 %")
    expect(fall.locator(".vs-yesterday")).to_have_class(re.compile(r"\bdown\b"))
    expect(fall.locator(".median")).to_have_text("50 (7 d)")
    expect(fall.locator(".vs-median")).to_have_text("\u221280 %")
    expect(rows.first).to_have_attribute("data-series", 'calls{direction="egress",profile="base-fall"}')
    marked = rows.filter(has=page.locator(".profile", has_text=xss))
    expect(marked.locator(".profile")).to_have_text(xss)  # the literal text
    expect(marked.locator(".vs-yesterday")).to_have_text("+50 %")
    expect(marked.locator(".vs-yesterday")).to_have_class(re.compile(r"\bup\b"))
    expect(marked.locator(".median")).to_have_text("0 (7 d)")
    expect(marked.locator(".vs-median")).to_have_text("new")
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("document.querySelectorAll('#baselines img').length") == 0
    page.locator("#baselines-title").scroll_into_view_if_needed()
    shot(page, "baselines")
    watched.assert_clean()
