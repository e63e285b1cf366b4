"""Alert on a final SIP code outside the expected set, once per (profile, code, window).

Options: ``expected`` — the codes that are normal outcomes of a call (default 200, 401,
407, 480, 486, 487, 603, and "none" for a CDR without a SIP code)."""

DEFAULT_EXPECTED = ("200", "401", "407", "480", "486", "487", "603", "none")
expected = frozenset(DEFAULT_EXPECTED)


def setup(options):
    global expected
    expected = frozenset(str(code) for code in options.get("expected", DEFAULT_EXPECTED))


def plugin(ctx):
    code = ctx.call.sip_code
    if code not in expected:
        ctx.alert(f"{ctx.profile}: unexpected SIP {code}",
                  key=[ctx.profile, code], code=code)
