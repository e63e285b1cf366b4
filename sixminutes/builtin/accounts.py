"""Per account × direction: calls, zero-duration calls and billed seconds."""

_keys = {}


def plugin(ctx):
    found = _keys.get((ctx.account, ctx.direction))
    if found is None:
        if len(_keys) > 200_000:  # accounts come and go
            _keys.clear()
        found = _keys[(ctx.account, ctx.direction)] = tuple(
            ctx.series(name, account=ctx.account, direction=ctx.direction)
            for name in ("account_calls", "account_zero_duration", "account_billsec"))
    calls, zero_duration, billsec_ = found
    ctx.add(calls)
    billsec = ctx.duration.billable
    if billsec == 0:
        ctx.add(zero_duration)
    else:
        ctx.add(billsec_, billsec)
