"""Alert on a final SIP code outside the expected set, once per (profile, code, window).

With a statistical guard, a lone unexpected code is only counted (``sip_status``, by the
``codes`` plugin): the alert fires once a carrier (profile × direction) has at least
``min_count`` CDRs with that code in the window and the 95 % Wilson lower bound of their
share of its calls is above ``share``; from then on each such CDR counts on the alert. The
defaults (1 and 0) keep the seed's behaviour, every unexpected code alerting at once; set,
say, ``min_count = 5`` and ``share = 0.05`` so that a single 403 on a healthy carrier wakes
no one.

Options: ``expected`` — the codes that are normal outcomes of a call (default 200, 401, 407,
480, 486, 487, 603, and "none" for a CDR without a SIP code); ``min_count``; ``share``. It
reads the ``sip_status`` and ``calls`` series of the built-ins.
"""
import numpy as np

from sixminutes.evidence import wilson_interval

DEFAULT_EXPECTED = ("200", "401", "407", "480", "486", "487", "603", "none")
expected = frozenset(DEFAULT_EXPECTED)
min_count = 1
share = 0.0


def setup(options):
    global expected, min_count, share
    expected = frozenset(str(code) for code in options.get("expected", DEFAULT_EXPECTED))
    min_count = int(options.get("min_count", 1))
    share = float(options.get("share", 0.0))


def batch(batch, ctx):
    rows = {}  # (window, profile, direction, code) → its rows in this batch
    windows = batch.window.tolist()
    for row in np.flatnonzero(~batch.isin("sip_code", expected)).tolist():
        call = batch.decoded[row].call
        rows.setdefault((windows[row], call.profile, call.direction, call.sip_code), []).append(row)
    for (window, profile, direction, code), found in rows.items():
        if evident(ctx, window, profile, direction, code):
            for row in found:
                ctx.alert(row, f"{profile}: unexpected SIP {code}", key=[profile, code], code=code)


def evident(ctx, window, profile, direction, code):
    """Whether the code's share of the carrier's calls in the window is surely above ``share``."""
    with_code = ctx.stat(window, "sip_status", code=code, direction=direction, profile=profile)
    calls = ctx.stat(window, "calls", direction=direction, profile=profile)
    if with_code is None or calls is None or with_code.count < min_count:
        return False
    return wilson_interval(with_code.count, calls.count)[0] > share
