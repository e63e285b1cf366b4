"""Fraud signals per account: bursts of short answered calls, calls to a country it never called.

Series: ``account_short_calls{account,direction}`` (answered, 0 < billsec < ``short_call_seconds``).
The countries each account has called are kept by the plugin, not as series (accounts ×
countries per window would cost as many cells as the accounts' own series).

Alerts, each naming the account, the country and the carrier (profile) of its calls:

* ``short call burst``: in a window, an account has at least ``burst_min`` short answered
  calls and the lower bound of the Wilson interval of their share of its calls, at
  ``confidence`` (99.9 %), is above ``burst_share`` (0.5): the pattern of wangiri and of
  a stolen account testing routes.
* ``new country``: an account that has called for ``min_history_hours`` (12) places at
  least ``new_country_min`` (5) calls to a country it had not called before, in the window
  of the first and the one after (a burst across a window's end is seen).
  The account's countries are those this plugin has seen it call; the live service saves
  them with its state (``export_state``/``import_state``), so a restart, even a ``kill -9``,
  keeps them (the 12 hours guard a new state file against every account looking new). Per
  account and direction it keeps the window it was first seen in and, per country called, the
  window of the first call there and the calls of that window and the next; an account
  without a call for eight days (data time) is forgotten at the next snapshot; DELETE
  /6minutes/data makes it forget what the deleted windows taught it (``forget_data``). Each
  process of a parallel replay sees only its own windows.

The third signal, an account's volume against its own baseline, is the
``account_volume_spike`` traffic rule (:mod:`sixminutes.baselines`). Options:
``short_call_seconds`` (6), ``burst_min`` (10), ``burst_share`` (0.5), ``confidence``
(0.999), ``new_country_min`` (5), ``min_history_hours`` (12), ``directions`` (["egress"]:
the calls an account places).
"""
import numpy as np

from sixminutes.evidence import wilson_interval, z_of
from sixminutes.series import Series
from sixminutes.windows import WINDOW

short = 6
burst_min = 10
burst_share = 0.5
z = z_of(0.999)
new_country_min = 5
min_history = 12 * 3600
directions = frozenset({"egress"})

known: dict = {}
"""(account, direction) → (the first window it was seen in, country → [the first window it
was called in, the calls to it in that window and the next])."""
last_seen: dict = {}
"""Account → the newest window of a batch it had calls in (accounts idle 8 days are dropped)."""
IDLE = 8 * 86400
STATE_VERSION = 1


def setup(options):
    """The options of ``[plugins.fraud]`` (see above)."""
    global short, burst_min, burst_share, z, new_country_min, min_history, directions
    short = int(options.get("short_call_seconds", 6))
    burst_min = int(options.get("burst_min", 10))
    burst_share = float(options.get("burst_share", 0.5))
    z = z_of(float(options.get("confidence", 0.999)))
    new_country_min = int(options.get("new_country_min", 5))
    min_history = int(float(options.get("min_history_hours", 12)) * 3600)
    directions = frozenset(options.get("directions", ["egress"]))


def _short(b):
    """Answered calls shorter than ``short`` seconds (and not zero)."""
    return b.answered & (b.billsec > 0) & (b.billsec < short)


def series(options):
    """The two series the signals read (with ``account_calls`` of the accounts plugin)."""
    return [Series("account_short_calls", when=_short, labels=("account", "direction"))]


def batch(batch, ctx):
    """Look for both signals in the windows and accounts of a batch (its series counted)."""
    _new_countries(batch, ctx)
    _bursts(batch, ctx)
    if batch.n:  # (for the bound on what is saved: one dict update per distinct account)
        last_seen.update(dict.fromkeys(batch.codes("account")[1], int(batch.window.max())))


def _new_countries(batch, ctx):
    """Alert on an account's calls to a country it had not called (see above)."""
    groups = batch.groups(("account", "country", "direction"))
    calls = np.bincount(groups.inverse, minlength=groups.size).tolist()
    profiles = batch.codes("profile")
    for g, (window, (account, country, direction)) in enumerate(
            zip(groups.window_list, groups.label_list)):
        if direction not in directions:
            continue
        seen = known.get((account, direction))
        if seen is None:
            seen = known[(account, direction)] = (window, {})
        since, countries = seen
        first = countries.get(country)
        if first is None or window < first[0]:
            first = countries[country] = [window, 0]
        if window > first[0] + WINDOW or country == "unknown":
            continue  # (called before this window and the one before)
        first[1] += calls[g]
        if first[1] < new_country_min or first[0] - since < min_history:
            continue  # (too few calls yet, or too little history to say)
        row = int(groups.first[g])
        profile = profiles[1][profiles[0][row]]
        ctx.alert(row, f"account {account}: {first[1]} calls to {country}, a country it never "
                       f"called, via {profile}", key=[account, direction, country],
                  account=account, direction=direction, country=country, profile=profile,
                  calls=first[1])


def _bursts(batch, ctx):
    """Alert on an account's burst of short answered calls (see above)."""
    mask = _short(batch)
    if not mask.any():
        return
    groups = batch.groups(("account", "direction"))
    rows = np.flatnonzero(mask)
    profiles, countries = batch.codes("profile"), batch.codes("country")
    for g in np.unique(groups.inverse[rows]).tolist():
        window, (account, direction) = groups.window_list[g], groups.label_list[g]
        if direction not in directions:
            continue
        burst = ctx.stat(window, "account_short_calls", account=account, direction=direction)
        calls = ctx.stat(window, "account_calls", account=account, direction=direction)
        if burst is None or calls is None or burst.count < burst_min:
            continue
        if wilson_interval(burst.count, calls.count, z)[0] <= burst_share:
            continue
        mine = rows[groups.inverse[rows] == g]
        profile = _most(profiles, mine)
        country = _most(countries, mine)
        ctx.alert(int(mine[0]), f"account {account}: {burst.count} short calls of {calls.count} "
                                f"in the window, mostly to {country} via {profile}",
                  key=[account, direction], account=account, direction=direction,
                  country=country, profile=profile, short_calls=burst.count, calls=calls.count)


def _most(encoded, rows):
    """The most frequent value of a dictionary-encoded column among rows."""
    codes, values = encoded
    return values[int(np.bincount(codes[rows]).argmax())]



def export_state():
    """What this plugin remembers, for the state file (sixminutes/plugin_state.py): per
    account and direction its first window, its last and its countries; accounts idle for
    eight days before the newest window seen are forgotten first (so are their entries here)."""
    newest = max(last_seen.values(), default=0)
    for account in [a for a, t in last_seen.items() if t < newest - IDLE]:
        del last_seen[account]
    for key in [k for k in known if k[0] not in last_seen]:
        del known[key]
    return {"version": STATE_VERSION, "accounts": [
        [account, direction, since, last_seen[account],
         [[country, first[0], first[1]] for country, first in countries.items()]]
        for (account, direction), (since, countries) in known.items()]}


def forget_data(before):
    """DELETE /6minutes/data erased the windows before ``before`` (all when None): forget the
    accounts not seen since, and the countries first called before it (their first call is
    erased: a call there is new again); an account's history starts again at the cut-off,
    so the ``min_history_hours`` guard counts from there."""
    if before is None:
        known.clear()
        last_seen.clear()
        return
    for account in [a for a, t in last_seen.items() if t < before]:
        del last_seen[account]
    for key, (since, countries) in list(known.items()):
        if key[0] not in last_seen:
            del known[key]
            continue
        kept = {c: first for c, first in countries.items() if first[0] >= before}
        known[key] = (max(since, before), kept)


def import_state(data):
    """Take back what :func:`export_state` saved (before any CDR is counted); entries of
    another shape are skipped, never half-read."""
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return
    for entry in data.get("accounts", []):
        try:
            account, direction, since, last, countries = entry
            restored = {str(c): [int(w), int(n)] for c, w, n in countries}
            known[(str(account), str(direction))] = (int(since), restored)
            last_seen[str(account)] = max(int(last), last_seen.get(str(account), 0))
        except (TypeError, ValueError):
            continue
