"""Per carrier (profile × direction): calls, answered, zero-duration, ACD, short calls, PDD,
network failures, MOS. Options: ``short_call_seconds`` (default 6)."""

NETWORK_SIP_CODES = frozenset({"408", "500", "502", "503", "504"})
NETWORK_Q850 = frozenset({"27", "34", "38", "41", "42", "102"})
short_call_seconds = 6


def setup(options):
    global short_call_seconds
    short_call_seconds = int(options.get("short_call_seconds", 6))


def plugin(ctx):
    call = ctx.call
    labels = {"direction": ctx.direction, "profile": ctx.profile}
    inc = ctx.increment
    inc("calls", **labels)
    if call.answered:
        inc("answered", **labels)
    billsec = call.billsec
    if billsec == 0:
        inc("zero_duration", **labels)
    else:
        inc("billsec", billsec, **labels)
        if billsec < short_call_seconds:
            inc("short_calls", **labels)
    if call.pdd_ms is not None:
        inc("pdd_ms", call.pdd_ms, **labels)
    code = call.sip_code
    if code in NETWORK_SIP_CODES or (code == "none" and call.q850 in NETWORK_Q850):
        inc("network_failures", **labels)
    if call.mos is not None:
        inc("mos", call.mos, **labels)
