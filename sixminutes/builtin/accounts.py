"""Per account × direction: calls, zero-duration calls and billed seconds."""


def plugin(ctx):
    ctx.increment("account_calls", account=ctx.account, direction=ctx.direction)
    billsec = ctx.duration.billable
    if billsec == 0:
        ctx.increment("account_zero_duration", account=ctx.account, direction=ctx.direction)
    else:
        ctx.increment("account_billsec", billsec, account=ctx.account, direction=ctx.direction)
