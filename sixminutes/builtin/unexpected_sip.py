"""Alert when a final SIP code outside the expected set takes a real share of a carrier's calls.

A lone unexpected code is counted (``sip_status``, by the ``codes`` plugin), not alerted: a
single 403 on a healthy carrier is no reason to wake anyone. The alert for (profile,
direction, code, window), labelled with that profile and direction, fires once a carrier (profile × direction) has at least ``min_count`` CDRs with that
code in the window and the 95 % Wilson lower bound of their share of its calls is above
``share``; from then on each such CDR counts on the alert. ``min_count = 1`` and
``share = 0`` give the seed's behaviour back: every unexpected code alerts at once.

Options: ``expected`` — the codes that are normal outcomes of a call (default 200, 401, 407,
480, 486, 487, 603, and "none" for a CDR without a SIP code); ``min_count`` (default 5);
``share`` (default 0.05). It reads the ``sip_status`` and ``calls`` series of the built-ins.
"""
import numpy as np

from sixminutes.evidence import wilson_interval

DEFAULT_EXPECTED = ("200", "401", "407", "480", "486", "487", "603", "none")
expected = frozenset(DEFAULT_EXPECTED)
min_count = 5
share = 0.05


def setup(options):
    global expected, min_count, share
    expected = frozenset(str(code) for code in options.get("expected", DEFAULT_EXPECTED))
    min_count = int(options.get("min_count", 5))
    share = float(options.get("share", 0.05))


def batch(batch, ctx):
    rows = {}  # (window, profile, direction, code) → its rows in this batch
    windows = batch.window.tolist()
    for row in np.flatnonzero(~batch.isin("sip_code", expected)).tolist():
        call = batch.decoded[row].call
        rows.setdefault((windows[row], call.profile, call.direction, call.sip_code), []).append(row)
    for (window, profile, direction, code), found in rows.items():
        if evident(ctx, window, profile, direction, code):
            for row in found:
                ctx.alert(row, f"{profile} ({direction}): unexpected SIP {code}",
                          key=[profile, direction, code], code=code, profile=profile,
                          direction=direction)


def evident(ctx, window, profile, direction, code):
    """Whether the code's share of the carrier's calls in the window is surely above ``share``."""
    with_code = ctx.stat(window, "sip_status", code=code, direction=direction, profile=profile)
    calls = ctx.stat(window, "calls", direction=direction, profile=profile)
    if with_code is None or calls is None or with_code.count < min_count:
        return False
    return wilson_interval(with_code.count, calls.count)[0] > share
