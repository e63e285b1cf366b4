"""Per carrier: the final SIP status and the hangup cause of every CDR ("none" when missing)."""
from sixminutes.series import Series

SERIES = [
    Series("sip_status", labels={"code": "sip_code", "direction": "direction", "profile": "profile"}),
    Series("hangup_cause", labels={"cause": "hangup_cause", "direction": "direction",
                                   "profile": "profile"}),
]
