"""Alert when a final SIP code outside the expected set takes a real share of a carrier's calls.

A lone unexpected code is counted (``sip_status``, by the ``codes`` plugin), not alerted: a
single 403 on a healthy carrier is no reason to wake anyone. The alert for (profile,
direction, code, window), labelled with that profile and direction, fires once a carrier
(profile × direction) has at least ``min_calls`` calls and ``min_count`` CDRs with that code
in the window and the
lower bound of the Wilson interval of their share of its calls, at ``confidence``
(99.999 %), is above ``share``; from then on each such CDR counts on the alert. The bar is
high because each window tests every carrier × unexpected code (multiple comparisons): at
95 %, or even 99.9 %, a healthy carrier's usual 2.7 % of 404s shows as 6 in 27 calls in one
window of some carrier, now and then. Hysteresis: in the window after
one where the share was evident, the alert goes on while the code's share of the carrier's
calls is still above ``share`` (without the evidence again), so a failing carrier whose
calls thin out makes one incident, not one per busy window. ``min_count = 1``,
``min_calls = 1`` and ``share = 0`` give the seed's behaviour back: every unexpected code
alerts at once.

Options: ``expected`` — the codes that are normal outcomes of a call (default 200, 401, 407,
480, 486, 487, 603, and "none" for a CDR without a SIP code); ``min_count`` (default 5);
``min_calls`` (default 20, as the threshold rules); ``share`` (default 0.05); ``confidence``
(default 0.99999). It reads the ``sip_status`` and ``calls`` series of the built-ins.
"""
import numpy as np

from sixminutes.evidence import wilson_interval, z_of
from sixminutes.windows import WINDOW

DEFAULT_EXPECTED = ("200", "401", "407", "480", "486", "487", "603", "none")
expected = frozenset(DEFAULT_EXPECTED)
min_count = 5
min_calls = 20
share = 0.05
z = z_of(0.99999)


def setup(options):
    global expected, min_count, min_calls, share, z
    min_calls = int(options.get("min_calls", 20))
    expected = frozenset(str(code) for code in options.get("expected", DEFAULT_EXPECTED))
    min_count = int(options.get("min_count", 5))
    share = float(options.get("share", 0.05))
    z = z_of(float(options.get("confidence", 0.99999)))


def batch(batch, ctx):
    rows = np.flatnonzero(~batch.isin("sip_code", expected))
    if not len(rows):
        return
    groups = batch.groups(("profile", "direction", "sip_code"))
    inverse = groups.inverse[rows]
    order = np.argsort(inverse, kind="stable")  # each group's rows, in input order
    found, starts = np.unique(inverse[order], return_index=True)
    runs = np.split(rows[order], starts[1:])
    for g, mine in sorted(zip(found.tolist(), runs), key=lambda run: run[1][0]):
        window, (profile, direction, code) = groups.window_list[g], groups.label_list[g]
        if evident(ctx, window, profile, direction, code):
            for row in mine.tolist():
                ctx.alert(row, f"{profile} ({direction}): unexpected SIP {code}",
                          key=[profile, direction, code], code=code, profile=profile,
                          direction=direction)


def evident(ctx, window, profile, direction, code):
    """Whether the code's share of the carrier's calls in the window is surely above ``share``,
    or (hysteresis) was so in the window before and is still above it in this one."""
    if surely(ctx, window, profile, direction, code):
        return True
    counts = _counts(ctx, window, profile, direction, code)
    return counts is not None and counts[0] > share * counts[1] and \
        surely(ctx, window - WINDOW, profile, direction, code)


def surely(ctx, window, profile, direction, code):
    """Whether the code's share of the carrier's calls in the window is surely above ``share``."""
    counts = _counts(ctx, window, profile, direction, code)
    if counts is None or counts[0] < min_count or counts[1] < min_calls:
        return False
    return wilson_interval(*counts, z)[0] > share


def _counts(ctx, window, profile, direction, code):
    """(CDRs with the code, calls) of the carrier in the window; None when it has none."""
    with_code = ctx.stat(window, "sip_status", code=code, direction=direction, profile=profile)
    calls = ctx.stat(window, "calls", direction=direction, profile=profile)
    if with_code is None or calls is None:
        return None
    return with_code.count, calls.count
