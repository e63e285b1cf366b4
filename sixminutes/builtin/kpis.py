"""Per carrier (profile × direction): calls, answered, zero-duration, ACD, short calls, PDD,
network failures, MOS. Options: ``short_call_seconds`` (default 6).

It runs for every CDR, so it keeps the keys of its series per carrier (``ctx.series``) and
adds to them with ``ctx.add``: the same as ``ctx.increment``, without building eight keys
per call."""

NETWORK_SIP_CODES = frozenset({"408", "500", "502", "503", "504"})
NETWORK_Q850 = frozenset({"27", "34", "38", "41", "42", "102"})
NAMES = ("calls", "answered", "zero_duration", "billsec", "short_calls", "pdd_ms",
         "network_failures", "mos")
short_call_seconds = 6
_keys = {}


def setup(options):
    global short_call_seconds
    short_call_seconds = int(options.get("short_call_seconds", 6))


def keys(ctx):
    """The keys of this carrier's series, in the order of NAMES."""
    found = _keys.get((ctx.direction, ctx.profile))
    if found is None:
        if len(_keys) > 100_000:  # carriers are few; a flood of odd profiles must not grow this
            _keys.clear()
        found = _keys[(ctx.direction, ctx.profile)] = tuple(
            ctx.series(name, direction=ctx.direction, profile=ctx.profile) for name in NAMES)
    return found


def plugin(ctx):
    call = ctx.call
    calls, answered, zero_duration, billsec_, short_calls, pdd_ms, network_failures, mos = keys(ctx)
    add = ctx.add
    add(calls)
    if call.answered:
        add(answered)
    billsec = call.billsec
    if billsec == 0:
        add(zero_duration)
    else:
        add(billsec_, billsec)
        if billsec < short_call_seconds:
            add(short_calls)
    if call.pdd_ms is not None:
        add(pdd_ms, call.pdd_ms)
    code = call.sip_code
    if code in NETWORK_SIP_CODES or (code == "none" and call.q850 in NETWORK_Q850):
        add(network_failures)
    if call.mos is not None:
        add(mos, call.mos)
