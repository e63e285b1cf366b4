"""Per destination country × carrier: calls, answered calls and billed seconds.

The country is the ISO 3166 alpha-2 code of the called number (``to``, E.164), ``unknown``
when it cannot be told (:mod:`sixminutes.destinations`, looked up once per distinct number
of a batch and cached by prefix). Cardinality: countries × carriers, never numbers.
"""
from sixminutes.series import Series

_DESTINATION = ("country", "direction", "profile")

SERIES = [
    Series("destination_calls", labels=_DESTINATION),
    Series("destination_answered", when="answered", labels=_DESTINATION),
    Series("destination_billsec", value="billsec", when=lambda b: b.billsec > 0, labels=_DESTINATION),
]
