"""Alert on a final SIP code outside the expected set, once per (profile, code, window).

Options: ``expected`` — the codes that are normal outcomes of a call (default 200, 401,
407, 480, 486, 487, 603, and "none" for a CDR without a SIP code)."""
import numpy as np

DEFAULT_EXPECTED = ("200", "401", "407", "480", "486", "487", "603", "none")
expected = frozenset(DEFAULT_EXPECTED)


def setup(options):
    global expected
    expected = frozenset(str(code) for code in options.get("expected", DEFAULT_EXPECTED))


def batch(batch, ctx):
    for row in np.flatnonzero(~batch.isin("sip_code", expected)).tolist():
        call = batch.decoded[row].call
        code = call.sip_code
        ctx.alert(row, f"{call.profile}: unexpected SIP {code}", key=[call.profile, code], code=code)
