"""Per account × direction: calls, zero-duration calls and billed seconds."""
from sixminutes.series import Series

_ACCOUNT = ("account", "direction")

SERIES = [
    Series("account_calls", labels=_ACCOUNT),
    Series("account_zero_duration", when=lambda b: b.billsec == 0, labels=_ACCOUNT),
    Series("account_billsec", value="billsec", when=lambda b: b.billsec > 0, labels=_ACCOUNT),
]
