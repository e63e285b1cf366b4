"""GET /6minutes/events read by a real HTTP client (httpx streaming), as a browser's
EventSource would: `ready` first, then `stats` batches after CDRs, and `alert` events."""
from __future__ import annotations

import queue
import re
import threading
import time

import httpx
import orjson

from service_process import config_toml, small_cdr, unique, window_of


class EventReader(threading.Thread):
    """Reads an SSE stream in a thread; parsed events go to a queue as (event, data)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.events: queue.Queue[tuple[str, object]] = queue.Queue()
        self.status: int | None = None
        self.headers: httpx.Headers | None = None
        self.comments = 0
        self.error: BaseException | None = None
        self.ended = threading.Event()

    def run(self) -> None:
        try:
            timeout = httpx.Timeout(5.0, read=60.0)
            with httpx.Client(timeout=timeout) as client:
                with client.stream("GET", self.url, headers={"Accept": "text/event-stream"}) as r:
                    self.status, self.headers = r.status_code, r.headers
                    event, data = "message", []
                    for line in r.iter_lines():
                        if line == "":
                            if data:
                                self.events.put((event, orjson.loads("\n".join(data))))
                            event, data = "message", []
                        elif line.startswith(":"):
                            self.comments += 1
                        elif line.startswith("event:"):
                            event = line[6:].strip()
                        elif line.startswith("data:"):
                            data.append(line[5:].lstrip())
        except BaseException as error:  # reported by the test
            self.error = error
        finally:
            self.ended.set()

    def next(self, timeout: float = 5.0) -> tuple[str, object]:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout} s (error: {self.error!r})") from None

    def until(self, want, timeout: float = 5.0, what: str = "event") -> list[tuple[str, object]]:
        """Events up to and including the first for which want(event, data) is true."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout} s; got {seen!r}")
            event, data = self.next(left)
            seen.append((event, data))
            if want(event, data):
                return seen


def _stats_item(events, label: str) -> dict:
    for event, data in events:
        if event == "stats":
            for item in data:
                if item["label"] == label:
                    return item
    raise AssertionError(f"{label} in no stats event: {events!r}")


def test_ready_then_stats_after_a_cdr_then_an_alert_for_an_unexpected_sip_code(serve):
    service = serve(config=config_toml())
    reader = EventReader(service.url + "/6minutes/events")
    reader.start()
    event, data = reader.next()
    assert event == "ready"
    assert reader.status == 200
    assert reader.headers["content-type"].startswith("text/event-stream")
    assert reader.headers["cache-control"] == "no-cache"
    service.wait(lambda: service.status()["events"]["clients"] == 1, what="1 event client")

    profile = unique("sse")
    end = int(time.time()) - 20
    doc = small_cdr(end, profile=profile, billsec="42", answer_epoch=str(end - 42),
                    sip_term_status="200")
    assert service.post_cdr(orjson.dumps(doc)).status_code == 200
    label = f'calls{{direction="egress",profile="{profile}"}}'
    events = reader.until(lambda e, d: e == "stats" and any(i["label"] == label for i in d),
                          what="a stats event for the CDR")
    item = _stats_item(events, label)
    assert set(item) == {"timestamp", "name", "label", "data"}
    assert item["timestamp"] == window_of(end)
    assert item["name"] == re.sub(r"[^A-Za-z]+", "_", label)
    assert item["data"] == {"sum": 1, "count": 1, "squares": 1, "min": 1, "max": 1}
    billsec = _stats_item(events, f'billsec{{direction="egress",profile="{profile}"}}')
    assert billsec["data"] == {"sum": 42, "count": 1, "squares": 42 * 42, "min": 42, "max": 42}
    assert all(e != "alert" for e, _ in events)  # SIP 200 is expected

    failed = small_cdr(end, profile=profile, sip_term_status="503",
                       hangup_cause="NORMAL_TEMPORARY_FAILURE")
    assert service.post_cdr(orjson.dumps(failed)).status_code == 200
    events = reader.until(lambda e, d: e == "alert", what="an alert event")
    alert = events[-1][1]
    assert alert["msg"] == f"{profile} (egress): unexpected SIP 503"
    assert alert["plugin"] == "unexpected_sip" and alert["profile"] == profile
    assert alert["timestamp"] == window_of(end) and alert["count"] == 1
    assert alert["id"] in {a["id"] for a in service.alerts()}
    # ... its incident, right after it in the same tick
    events += reader.until(lambda e, d: e == "incident", what="an incident event")
    incident = events[-1][1]
    assert incident["rule"] == "unexpected_sip" and incident["carrier"] == f"{profile}/egress"
    assert incident["alerts"] == [alert["id"]] and incident["state"] == "firing"
    assert incident["id"] in {i["id"] for i in service.json("/6minutes/incidents")}
    # ... and the stats of that CDR, in the same tick or the next one
    label2 = f'sip_status{{code="503",direction="egress",profile="{profile}"}}'
    if not any(e == "stats" and any(i["label"] == label2 for i in d) for e, d in events):
        events += reader.until(lambda e, d: e == "stats" and any(i["label"] == label2 for i in d),
                               what="the stats of the 503 CDR")
    assert _stats_item(events, label)["data"]["count"] == 2

    # A second client gets `ready` first, then the same live events.
    second = EventReader(service.url + "/6minutes/events")
    second.start()
    assert second.next()[0] == "ready"
    service.wait(lambda: service.status()["events"]["clients"] == 2, what="2 event clients")
    assert service.post_cdr(orjson.dumps(small_cdr(end, profile=profile))).status_code == 200
    for client in (reader, second):
        got = client.until(lambda e, d: e == "stats" and any(
            i["label"] == label and i["data"]["count"] == 3 for i in d), what="count 3")
        assert got

    # The service stopping ends the streams (it does not wait for the clients).
    service.stop()
    assert reader.ended.wait(5) and second.ended.wait(5)
