"""Alert notifications out: Alertmanager's API v2, and webhooks signed with HMAC-SHA256.

What is notified is the incident (:mod:`sixminutes.incidents`), not the record of each
window: an alert record that fires or resolves tells its incident's targets, once per change
of the incident's state. An account incident that a firing carrier incident explains is not
notified (it is in GET /6minutes/incidents, with ``inhibited_by``).

Ingest never waits for them. A change only puts the incident in a bounded queue per
target, where the newest version of the same incident replaces the older one; a sender task per
target posts with retries and capped exponential backoff. What a full queue drops is counted
(status and /metrics), never blocked on.

Alertmanager is told when an incident fires and when it resolves, and every firing incident
again each ``alertmanager_resend_seconds``, as its clients are expected to: a firing one carries
an ``endsAt`` four resend periods ahead, so that Alertmanager resolves it by itself if
sixminutes goes away. Webhooks get one POST per firing and per resolution: the item of
GET /6minutes/incidents, with the sample CDR of its first record as ``doc``, signed with the
time it was sent. A count that grows, or a window added to an incident, is not a change worth
a notification (it would be one per CDR).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import re
import time
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from .alerts import Alert
from .incidents import Incident, incident_of
from .lifecycle import RESOLVED

__all__ = ["Notifier", "Target", "alertmanager_item", "sign"]

log = logging.getLogger("sixminutes.notify")

SIGNATURE_HEADER = "X-Sixminutes-Signature"
TIMESTAMP_HEADER = "X-Sixminutes-Timestamp"
MAX_BACKOFF = 60.0
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_RETRYABLE = {408, 425, 429}


def sign(secret: str, body: bytes, timestamp: str) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC of ``<timestamp>.<body>``;
    with the timestamp signed, a receiver can refuse a captured request replayed later."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


def alert_labels(alert: Alert) -> dict[str, str]:
    """Alertmanager's identity of an alert: the rule or plugin, and what it is about."""
    labels = {"alertname": alert.plugin, "severity": str(alert.fields.get("severity", "warning"))}
    rule_labels = alert.fields.get("labels")
    if alert.fields.get("rule") == alert.plugin and isinstance(rule_labels, dict):
        labels.update((str(k), str(v)) for k, v in rule_labels.items())
    else:
        labels.update(profile=alert.profile, direction=alert.direction)
        if alert.key is not None:
            key = alert.key if isinstance(alert.key, str) else orjson.dumps(alert.key).decode()
            labels["key"] = key
        else:  # the message is what tells this plugin's alerts apart
            labels["msg"] = alert.msg if len(alert.msg) <= 200 else \
                hashlib.sha1(alert.msg.encode("utf-8", "replace")).hexdigest()[:16]
        for name, value in alert.fields.items():  # the raiser's scalar fields: code=503, ...
            if (name not in labels and _LABEL_NAME.fullmatch(name) and not name.startswith("__")
                    and isinstance(value, (str, int)) and not isinstance(value, bool)
                    and len(str(value)) <= 200):
                labels[name] = str(value)
    return {k: v for k, v in labels.items() if v != ""}


def incident_labels(incident: Incident) -> dict[str, str]:
    """Alertmanager's identity of an incident: its first record's, with the incident's
    severity and scope (``carrier``, ``account`` or ``other``: contrib's inhibit rules use it)."""
    labels = alert_labels(incident.alerts[0])
    labels.update(severity=incident.severity, scope=incident.scope)
    return labels


def alertmanager_item(incident: Incident | Alert, now: float, resend: float,
                      public_url: str) -> dict[str, Any]:
    """One incident (or one record, as the incident of that record alone) as Alertmanager's
    API v2 takes it."""
    if isinstance(incident, Alert):
        incident = incident_of([incident])
    first = incident.alerts[0]
    link = f"{public_url}/6minutes/alerts/{first.id}"
    window = _iso(incident.first_window)
    peak = "" if incident.peak is None else f", peak {incident.peak:g}"
    item = {
        "labels": incident_labels(incident),
        "annotations": {
            "summary": incident.msg,
            "description": f"{incident.msg} — from window {window}, {incident.windows} "
                           f"window(s), {incident.count} CDR(s){peak}",
            "window": window,
            "windows": str(incident.windows),
            "incident": f"{public_url}/6minutes/incidents/{incident.id}",
            "dashboard": f"{public_url}/6minutes",
            "sample": link,
        },
        "startsAt": _iso(incident.starts_at or incident.first_window),
        "generatorURL": link,
    }
    if incident.state == RESOLVED and incident.ends_at is not None:
        item["endsAt"] = _iso(incident.ends_at)
    else:
        item["endsAt"] = _iso(now + 4 * resend)
    return item


class Target:
    """One destination: its bounded queue, its counters and how to post a batch to it."""

    def __init__(self, kind: str, url: str, max_queue: int) -> None:
        parsed = httpx.URL(url)
        bare = parsed.copy_with(username=None, password=None)  # httpx never sees the credentials
        self.kind = kind
        self.url = str(bare)
        self.auth = httpx.BasicAuth(parsed.username, parsed.password) if parsed.userinfo else None
        # (a webhook's path or query often holds its secret: Slack, Teams, ?token=)
        hidden = "/…" if parsed.path.strip("/") or parsed.query else ""
        self.name = f"{kind}:{parsed.scheme}://{bare.netloc.decode('ascii')}{hidden}"
        self.max_queue = max(1, max_queue)
        self.queue: OrderedDict[Any, Any] = OrderedDict()
        """Alertmanager: labels → Alert; webhook: (id, state) → (state, body) of that change."""
        self.wake = asyncio.Event()
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.rejected = 0
        self.last_error: str | None = None
        self.last_sent_at: float | None = None
        self.retry_at: float | None = None
        self.resend_due = False

    def put(self, key: Any, item: Any) -> None:
        """Queue an item; the newest version of the same key wins, the oldest goes when full."""
        if key in self.queue:
            self.queue.move_to_end(key)
        self.queue[key] = item
        self._bound()
        self.wake.set()

    def take(self, limit: int) -> list[tuple[Any, Any]]:
        return [self.queue.popitem(last=False) for _ in range(min(limit, len(self.queue)))]

    def put_back(self, batch: list[tuple[Any, Any]]) -> None:
        """A batch that failed goes back in front, unless a newer version was queued since."""
        for key, item in reversed(batch):
            if key not in self.queue:
                self.queue[key] = item
                self.queue.move_to_end(key, last=False)
        self._bound()

    def _bound(self) -> None:
        while len(self.queue) > self.max_queue:
            self.queue.popitem(last=False)
            self.dropped += 1

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "queued": len(self.queue),
                "max_queue": self.max_queue, "sent": self.sent, "failed": self.failed,
                "dropped": self.dropped, "rejected": self.rejected,
                "last_error": self.last_error, "last_sent_at": self.last_sent_at,
                "retry_at": self.retry_at}


class Notifier:
    """Sends alert changes to every configured Alertmanager and webhook."""

    def __init__(self, alertmanagers: Iterable[str] = (), webhooks: Iterable[str] = (), *,
                 secret: str | None = None, public_url: str = "http://127.0.0.1:8360",
                 resend: float = 60.0, max_queue: int = 1000, timeout: float = 5.0,
                 firing: Callable[[], list[Alert]] = list,
                 incident: Callable[[Alert], Incident] = lambda alert: incident_of([alert]),
                 clock: Callable[[], float] = time.time) -> None:
        self.targets = [Target("alertmanager", u, max_queue) for u in alertmanagers]
        self.targets += [Target("webhook", u, max_queue) for u in webhooks]
        self.secret = secret
        self.public_url = public_url.rstrip("/")
        self.resend = resend
        self.timeout = timeout
        self.firing = firing
        """The firing alert records (their incidents are resent)."""
        self.incident = incident
        self.clock = clock
        self._told: dict[str, str] = {}  # incident id → the state last queued for it
        self.speaks: Callable[[], bool] = lambda: True
        """False while another instance of a group notifies (it holds the lead): then
        nothing is queued; the one that takes the lead over resends the firing set."""

    def __bool__(self) -> bool:
        return bool(self.targets)

    def changed(self, alert: Alert) -> None:
        """An alerts listener: queue the record's incident when it fired or resolved since
        last told; an incident a carrier incident explains is not told."""
        if not self.speaks():
            return
        incident = self.incident(alert)
        if self._told.get(incident.id) == incident.state:
            return
        if incident.inhibited_by is not None and incident.state != RESOLVED:
            return  # (explained: told only if it was told firing before, when it resolves)
        if incident.inhibited_by is not None and incident.id not in self._told:
            return
        self._told[incident.id] = incident.state
        for target in self.targets:
            self._queue(target, incident)

    def _incidents(self) -> list[Incident]:
        """The firing incidents, once each, but those explained by a carrier incident."""
        found: dict[tuple, Incident] = {}
        for alert in self.firing():
            key = (alert.plugin, alert.subject, alert.starts_at)
            if key not in found:
                found[key] = self.incident(alert)
        return [i for i in found.values() if i.inhibited_by is None]

    def _queue(self, target: Target, incident: Incident) -> None:
        if target.kind == "alertmanager":  # the incident itself: it is sent as it is by then
            target.put(tuple(sorted(incident_labels(incident).items())), incident)
        else:  # this change, as it is now: a later one must not rewrite it
            target.put((incident.id, incident.state), (incident.state, _item_body(incident)))

    def resend_firing(self) -> None:
        """Have every Alertmanager hear the whole firing set again, past the queues' bound."""
        if not self.speaks():
            return
        for target in self.targets:
            if target.kind == "alertmanager":
                target.resend_due = True
                target.wake.set()
        keep = {i.id for i in self._incidents()}
        if len(self._told) > 2 * len(keep) + 10_000:  # forget alerts long resolved or deleted
            self._told = {i: s for i, s in self._told.items() if i in keep}

    def forget(self, kept: Callable[[str], bool]) -> None:
        """Forget what was told of deleted alerts, so that one raised again is told again."""
        self._told = {i: s for i, s in self._told.items() if kept(i)}

    async def run(self) -> None:
        """Send until cancelled: one task per target, and the periodic resend."""
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            tasks = [asyncio.create_task(self._send(target, client), name=target.name)
                     for target in self.targets]
            try:
                while True:
                    await asyncio.sleep(self.resend)
                    self.resend_firing()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _send(self, target: Target, client: httpx.AsyncClient) -> None:
        """Deliver a target's queue for ever; an unexpected error costs a second, not the task."""
        while True:
            try:
                await self._deliver(target, client)
            except Exception as error:  # noqa: BLE001 - logged, counted, then go on
                target.failed += 1
                target.last_error = f"{type(error).__name__}: {error}"
                log.exception("%s: sender failed; going on in 1 s", target.name)
                await asyncio.sleep(1)

    async def _deliver(self, target: Target, client: httpx.AsyncClient) -> None:
        failures = 0
        while True:
            if not target.queue and not target.resend_due:
                target.wake.clear()
                await target.wake.wait()
            if target.resend_due:  # the whole firing set, straight from the alerts
                target.resend_due = False
                unique = list({tuple(sorted(incident_labels(i).items())): i
                               for i in self._incidents()}.items())
                ok = all([await self._attempt(target, client, unique[i:i + 500], resend=True)
                          for i in range(0, len(unique), 500)])
            else:
                ok = await self._attempt(target, client,
                                         target.take(500 if target.kind == "alertmanager" else 1))
            if ok:
                if failures:
                    log.info("%s: delivered again after %d failed attempt(s)", target.name, failures)
                failures, target.retry_at = 0, None
                continue
            delay = min(MAX_BACKOFF, 2.0 ** min(failures, 16)) * random.uniform(0.8, 1.2)
            if failures == 0:
                log.warning("%s: %s; retrying with backoff", target.name, target.last_error)
            failures += 1
            target.retry_at = self.clock() + delay
            await asyncio.sleep(delay)

    async def _attempt(self, target: Target, client: httpx.AsyncClient,
                       batch: list[tuple[Any, Any]], resend: bool = False) -> bool:
        """Post one batch; False when it is worth retrying (it is then queued again)."""
        if not batch:
            return True
        try:
            await self._post(target, client, [item for _, item in batch])
        except (_Rejected, httpx.InvalidURL, ValueError, TypeError) as error:
            # the target refuses these alerts, or they cannot be sent: retrying is useless
            target.rejected += len(batch)
            target.last_error = _CREDENTIALS.sub("//***@", f"{type(error).__name__}: {error}"
                                                 if not isinstance(error, _Rejected) else str(error))
            log.error("%s: %d alert(s) not sent: %s", target.name, len(batch), target.last_error)
            return True
        except (httpx.HTTPError, _Retry) as error:
            target.failed += 1
            target.last_error = _describe(error)
            if resend:
                target.resend_due = True
            else:
                target.put_back(batch)
            return False
        target.sent += len(batch)
        target.last_sent_at = self.clock()
        return True

    async def _post(self, target: Target, client: httpx.AsyncClient, items: list[Any]) -> None:
        if target.kind == "alertmanager":
            now = self.clock()
            body = orjson.dumps([alertmanager_item(a, now, self.resend, self.public_url)
                                 for a in items])
            parts = urlsplit(target.url)
            path = parts.path.rstrip("/")
            url = urlunsplit(parts._replace(
                path=path if path.endswith("/api/v2/alerts") else path + "/api/v2/alerts"))
            headers = {"Content-Type": "application/json"}
        else:
            [(state, body)] = items
            url = target.url
            headers = {"Content-Type": "application/json", "X-Sixminutes-Event": state}
            if self.secret:
                stamp = str(int(self.clock()))
                headers[TIMESTAMP_HEADER] = stamp
                headers[SIGNATURE_HEADER] = sign(self.secret, body, stamp)
        response = await client.post(url, content=body, headers=headers, auth=target.auth)
        status = response.status_code
        if status >= 500 or status in _RETRYABLE:
            raise _Retry(f"HTTP {status}")
        if 300 <= status < 400:  # not followed: a notification must go where it was configured
            raise _Rejected(f"HTTP {status} redirect to {response.headers.get('location', '?')}: "
                            "configure the final URL")
        if status >= 400:
            raise _Rejected(f"HTTP {status}: {response.text[:200]}")

    def status(self) -> list[dict[str, Any]]:
        return [target.status() for target in self.targets]


class _Retry(Exception):
    """The target answered with an error worth retrying (5xx, 408, 429)."""


class _Rejected(Exception):
    """The target answered 4xx: the alerts are not sent again."""


def _item_body(incident: Incident) -> bytes:
    """The incident's item as JSON, with its first record's sample CDR as ``doc``; a sample
    that cannot be written becomes a note."""
    item = incident.to_json()
    item["doc"] = incident.alerts[0].doc
    try:
        return orjson.dumps(item, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError) as error:
        item["doc"] = {"unsent": f"the sample CDR cannot be written as JSON: {error}"}
        return orjson.dumps(item, option=orjson.OPT_NON_STR_KEYS)


def _describe(error: Exception) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.HTTPError):
        return _CREDENTIALS.sub("//***@", f"{type(error).__name__}: {error}")
    return str(error)


_CREDENTIALS = re.compile(r"//[^/@\s]*@")
