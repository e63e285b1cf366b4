"""Per carrier (profile × direction): calls, answered, zero-duration, ACD, short calls, PDD,
network failures, MOS. Options: ``short_call_seconds`` (default 6).

A batch plugin: each series is declared once and counted over a whole batch of CDRs."""
from sixminutes.series import Series

NETWORK_SIP_CODES = frozenset({"408", "500", "502", "503", "504"})
NETWORK_Q850 = frozenset({"27", "34", "38", "41", "42", "102"})


def network_failure(batch):
    """A failure of the network: a 408/5xx, or no SIP code at all and a Q.850 cause saying so."""
    no_code = batch.isin("sip_code", ("none",))
    return batch.isin("sip_code", NETWORK_SIP_CODES) | (no_code & batch.isin("q850", NETWORK_Q850))


def series(options):
    short = int(options.get("short_call_seconds", 6))
    return [
        Series("calls"),
        Series("answered", when="answered"),
        Series("zero_duration", when=lambda b: b.billsec == 0),
        Series("billsec", value="billsec", when=lambda b: b.billsec > 0),
        Series("short_calls", when=lambda b: (b.billsec > 0) & (b.billsec < short)),
        Series("pdd_ms", value="pdd_ms"),
        Series("network_failures", when=network_failure),
        Series("mos", value="mos"),
    ]
