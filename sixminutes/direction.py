"""One direction vocabulary: ccnq's ``ingress`` / ``egress``, FreeSWITCH's words mapped onto it.

A carrier must have one row per direction, whichever variable a CDR names it with. ccnq
sets ``ccnq_direction`` to ``ingress`` (a call from a carrier into the network) or ``egress``
(a call out to a carrier). Without it, FreeSWITCH's own ``direction`` variable says which way
the leg went through the switch: ``inbound`` (the leg came in: from the carrier, ingress) or
``outbound`` (the switch placed it: to the carrier, egress). Any other value is kept as it is
(a site's own words), and a CDR without one is ``unknown``.
"""
from __future__ import annotations

__all__ = ["DIRECTIONS", "normal_direction"]

DIRECTIONS = {"inbound": "ingress", "outbound": "egress", "ingress": "ingress", "egress": "egress"}
"""Every word mapped, lower case: FreeSWITCH's onto ccnq's, and ccnq's onto themselves."""


def normal_direction(value: str) -> str:
    """The direction in the one vocabulary: ``inbound`` → ``ingress``, ``outbound`` → ``egress``
    (in any case); other words unchanged."""
    return DIRECTIONS.get(value, None) or DIRECTIONS.get(value.lower(), value)
