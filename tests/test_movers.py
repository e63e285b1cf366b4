"""The API's reading of baselines: values beside them, the top destinations, the movers."""
from __future__ import annotations

from sixminutes.baselines import DAY, History
from sixminutes.movers import baselines, destinations, last_complete
from sixminutes.stats import Stat, series_key
from sixminutes.store import Store

W = 1_700_000_000 - 1_700_000_000 % 360


def put(store: Store, window: int, name: str, count: int, **labels: str) -> None:
    store.merge(window, series_key(name, labels), Stat(float(count), count, float(count), 1.0, 1.0))


def test_values_beside_yesterday_and_the_median():
    store, history = Store(), History()
    for day, n in ((0, 40), (1, 100), (2, 90), (3, 110)):
        put(store, W - day * DAY, "calls", n, direction="egress", profile="a")
    put(store, W - DAY, "calls", 30, direction="egress", profile="gone")  # nothing today: 0
    rows = baselines(store, history, W)
    assert [(r["labels"]["profile"], r["value"], r["yesterday"], r["median"], r["days"])
            for r in rows] == [("a", 40, 100, 100, 3), ("gone", 0, 30, 0, 3)]  # (the days before: none)
    assert baselines(store, history, W, labels={"profile": "gone"})[0]["value"] == 0
    assert last_complete(store) == W - 360


def test_top_destinations_and_movers():
    store = Store()
    for day in range(4):
        put(store, W - day * DAY, "destination_calls", 100, country="FR", direction="egress",
            profile="a")
        put(store, W - day * DAY, "destination_answered", 60, country="FR", direction="egress",
            profile="a")
        put(store, W - day * DAY, "destination_calls", 50, country="DE", direction="egress",
            profile="b")
        put(store, W - day * DAY, "destination_answered", 40 if day else 5, country="DE",
            direction="egress", profile="b")
    put(store, W, "destination_calls", 30, country="FR", direction="egress", profile="b")
    put(store, W, "destination_calls", 200, country="ER", direction="egress", profile="b")
    found = destinations(store, History(), W, limit=5)
    assert [(t["country"], t["calls"]) for t in found["top"]] == [("ER", 200), ("FR", 130), ("DE", 50)]
    assert found["days"] == 3
    movers = {m["country"]: m for m in found["movers"]}
    assert found["movers"][0]["country"] == "ER" and movers["ER"]["baseline"] == 0  # new: first
    assert movers["ER"]["change"] == 200 and movers["FR"]["change"] == 30
    assert movers["DE"]["asr"] == 0.1 and movers["DE"]["asr_yesterday"] == 0.8
    assert round(movers["DE"]["asr_change"], 6) == -0.7


def test_a_carrier_whose_yesterday_is_only_in_the_hourly_history_is_listed():
    """Past retention, yesterday's window is in the hourly history, not the store: a carrier
    silent today is still listed (value 0 beside its yesterday), as one with calls is."""
    store, history = Store(), History()
    put(store, W, "calls", 10, direction="egress", profile="a")
    history.fold(W - DAY, [series_key("calls", {"direction": "egress", "profile": "a"}),
                           series_key("calls", {"direction": "egress", "profile": "silent"}),
                           series_key("account_calls", {"account": "x", "direction": "egress"})],
                 [50.0, 40.0, 7.0])
    rows = baselines(store, history, W)
    assert [(r["labels"]["profile"], r["value"], r["yesterday"]) for r in rows] == [
        ("a", 10, 50), ("silent", 0, 40)]
