"""The country of a called number: ISO 3166 alpha-2 from its E.164 digits, cached by prefix.

The hot path of the ``destinations`` plugin: every distinct called number of a batch is
looked up once (:meth:`~sixminutes.batch.Batch.codes`), and the lookup is a dict read on
a prefix. ``phonenumbers`` is asked only on a miss (about 15 us a number, built as its
``parse`` would build it: :func:`_shared_region`; a replay misses thousands). Its answer
depends, for a country code that one region holds alone (most), on the country code only;
for a shared one (+1, +7, +44, +590…) on the leading digits and the length of the national
number, so the cache key is the country code and the first :data:`DEPTH` national digits
and the length (``tests/test_destinations.py`` holds the cache equal to ``phonenumbers``
on numbers of every shared country code).

A number is read as E.164 when it is ``+`` or nothing followed by 8 to 15 digits, the
first not 0 (ccnq's ``ccnq_to_e164`` has no ``+``); anything else (an extension, a
national number with a trunk prefix, a SIP URI) is ``unknown``, as is a number whose
country code is no country (international services, +800, +882…).
"""
from __future__ import annotations

import re

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumber
from phonenumbers.phonemetadata import PhoneMetadata

__all__ = ["UNKNOWN", "DEPTH", "country_of", "country_uncached"]

UNKNOWN = "unknown"
DEPTH = 6
"""National digits that decide the region of a shared country code (5 is not enough: +44 1480…)."""
_MAX_CACHE = 500_000

_SINGLE: dict[str, str] = {}
"""Country code → its one region (or UNKNOWN for a non-geographic code)."""
_SHARED: dict[str, re.Pattern[str] | None] = {}
"""A country code several regions share → its national prefix as ``phonenumbers.parse`` strips
it (None when it has none)."""
for _code, _regions in COUNTRY_CODE_TO_REGION_CODE.items():
    if len(_regions) == 1:
        _SINGLE[str(_code)] = _regions[0] if _regions[0] != "001" else UNKNOWN
    else:
        _prefix = PhoneMetadata.metadata_for_region_or_calling_code(
            _code, phonenumbers.region_code_for_country_code(_code)).national_prefix_for_parsing
        _SHARED[str(_code)] = re.compile(_prefix) if _prefix else None
_cache: dict[tuple[str, int], str] = {}


def _digits(number: str) -> str | None:
    """The E.164 digits of a called number, or None when it is not one."""
    digits = number[1:] if number[:1] == "+" else number
    if not 8 <= len(digits) <= 15 or not digits.isdigit() or not digits.isascii() or digits[0] == "0":
        return None
    return digits


def country_of(number: str | None) -> str:
    """The ISO 3166 alpha-2 code of the country a number is in, ``unknown`` when it cannot tell."""
    if not number:
        return UNKNOWN
    digits = _digits(number)
    if digits is None:
        return UNKNOWN
    for size in (1, 2, 3):
        code = digits[:size]
        single = _SINGLE.get(code)
        if single is not None:
            return single
        if code in _SHARED:
            key = (digits[:size + DEPTH], len(digits))
            found = _cache.get(key)
            if found is None:
                if len(_cache) >= _MAX_CACHE:
                    _cache.clear()
                found = _cache[key] = _shared_region(code, digits[size:])
            return found
    return UNKNOWN  # (no country code starts so: +28…, +80…)


def country_uncached(number: str | None) -> str:
    """What :func:`country_of` says, asked of ``phonenumbers`` for the whole number (tests)."""
    digits = _digits(number or "")
    return UNKNOWN if digits is None else _region(digits)


def _shared_region(code: str, national: str) -> str:
    """:func:`_region` of a number of a shared country code, in half the time: the number is
    built as ``phonenumbers.parse`` builds it when it strips no national prefix (the usual
    international number), and parsed when it might."""
    prefix = _SHARED[code]
    if prefix is not None and prefix.match(national):
        return _region(code + national)
    number = PhoneNumber(country_code=int(code), national_number=int(national))
    if national[0] == "0":  # (as parse keeps them: Italy's leading zeros)
        number.italian_leading_zero = True
        zeros = len(national) - len(national.lstrip("0"))
        zeros = min(zeros, len(national) - 1)
        if zeros > 1:
            number.number_of_leading_zeros = zeros
    return _answer(phonenumbers.region_code_for_number(number))


def _answer(region: str | None) -> str:
    return region if region and region != "001" else UNKNOWN


def _region(digits: str) -> str:
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse("+" + digits))
    except phonenumbers.NumberParseException:
        return UNKNOWN
    return _answer(region)
