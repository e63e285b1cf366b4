"""Per carrier: the final SIP status and the hangup cause of every CDR ("none" when missing)."""


def plugin(ctx):
    ctx.increment("sip_status", code=ctx.call.sip_code, direction=ctx.direction, profile=ctx.profile)
    ctx.increment("hangup_cause", cause=ctx.call.hangup_cause, direction=ctx.direction,
                  profile=ctx.profile)
