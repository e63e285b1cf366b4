"""Per carrier: the final SIP status and the hangup cause of every CDR ("none" when missing)."""

_keys = {}


def plugin(ctx):
    call = ctx.call
    seen = (call.sip_code, call.hangup_cause, ctx.direction, ctx.profile)
    found = _keys.get(seen)
    if found is None:  # the keys of this (code, cause, carrier), kept: see kpis.py
        if len(_keys) > 100_000:
            _keys.clear()
        found = _keys[seen] = (
            ctx.series("sip_status", code=call.sip_code, direction=ctx.direction, profile=ctx.profile),
            ctx.series("hangup_cause", cause=call.hangup_cause, direction=ctx.direction,
                       profile=ctx.profile))
    ctx.add(found[0])
    ctx.add(found[1])
