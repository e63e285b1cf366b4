"""Destinations: the country of a called number, cached by prefix, counted per carrier."""
from __future__ import annotations

import random
from collections import Counter

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumberType

from helpers import END, raw
from sixminutes.config import Config
from sixminutes.destinations import UNKNOWN, _region, _shared_region, country_of, country_uncached
from sixminutes.engine import Engine

SHARED = sorted(str(code) for code, regions in COUNTRY_CODE_TO_REGION_CODE.items() if len(regions) > 1)
CODES = sorted(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)


@settings(max_examples=3000, deadline=None)
@given(code=st.sampled_from(SHARED + CODES), rest=st.text("0123456789", min_size=5, max_size=12),
       plus=st.booleans())
def test_the_cache_says_what_phonenumbers_says(code, rest, plus):
    number = ("+" if plus else "") + code + rest
    assert country_of(number) == country_uncached(number)
    assert country_of(number) == country_uncached(number)  # (from the cache, the second time)


@settings(max_examples=3000, deadline=None)
@given(code=st.sampled_from(SHARED), prefix=st.sampled_from(["", "0", "00", "1", "8", "1831"]),
       national=st.text("0123456789", min_size=5, max_size=11))
def test_a_number_built_without_parsing_is_in_the_region_parse_says(code, prefix, national):
    national = (prefix + national)[:15 - len(code)]  # (national prefixes, Italy's zeros)
    assert _shared_region(code, national) == _region(code + national)


def test_numbers_of_shared_country_codes_by_prefix():
    # every region of a shared code, by its example numbers: phonenumbers' answer comes back,
    # and it is the region itself but where the region shares a range (VA mobiles are IT's)
    found = []
    for regions in COUNTRY_CODE_TO_REGION_CODE.values():
        if len(regions) < 2:
            continue
        for region in regions:
            for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE):
                example = phonenumbers.example_number_for_type(region, kind)
                if example is None:
                    continue
                e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                assert country_of(e164) == country_uncached(e164), e164
                found.append(country_of(e164) == region)
    assert sum(found) >= 0.85 * len(found) and len(found) > 40


def test_what_is_no_e164_number_is_unknown():
    for number in ("", "1000", "+", "+0123456789", "00442071234567", "sip:bob@example.com",
                   "+1234567890123456", "+800 1234 5678", "+80012345678", "٣٣١٤٢٦٨٥٣٠٠"):
        assert country_of(number) == UNKNOWN, number


def world(seed: int, n: int) -> tuple[list[bytes], Counter]:
    """CDRs to numbers drawn from example numbers of regions (their last digits changed where
    the region is the only one of its code), and the count per country they were drawn for."""
    rng = random.Random(seed)
    regions = ["FR", "DE", "GB", "JE", "US", "CA", "JM", "RU", "KZ", "BR", "IN", "NG", "CI", "PH"]
    truth: Counter = Counter()
    docs = []
    for i in range(n):
        profile = rng.choice(["carrier-a", "carrier-b"])
        if rng.random() < 0.1:
            to, country = rng.choice(["1000", "", "+800123456789"]), UNKNOWN
        else:
            country = rng.choice(regions)
            example = phonenumbers.example_number_for_type(country, PhoneNumberType.MOBILE)
            to = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            if len(COUNTRY_CODE_TO_REGION_CODE[example.country_code]) == 1:
                to = to[:-2] + f"{rng.randrange(100):02d}"
            if rng.random() < 0.5:
                to = to[1:]  # ccnq's e164 has no +
        truth[(country, profile)] += 1
        docs.append(raw(_id=f"c{i}", end_epoch=END + rng.randrange(3 * 360), ccnq_to_e164=to,
                        ccnq_profile=profile, ccnq_direction="egress", billsec=rng.choice([0, 30])))
    return docs, truth


def test_per_country_counts_equal_the_numbers_generated():
    docs, truth = world(7, 3000)
    engine = Engine(Config(retention_hours=None))
    engine.feed_many(docs[:1234])
    for doc in docs[1234:1300]:  # small live batches, row by row, then numpy again
        engine.feed(doc)
    engine.feed_many(docs[1300:])
    counted: Counter = Counter()
    answered = 0.0
    for _, key, stat in engine.store.items(names=["destination_calls", "destination_answered"]):
        labels = dict(part.split("=") for part in key[key.index("{") + 1:-1].replace('"', "").split(","))
        if key.startswith("destination_calls"):
            counted[(labels["country"], labels["profile"])] += stat.count
        else:
            answered += stat.count
    assert counted == truth
    assert answered == sum(1 for d in docs if b'"billsec":"30"' in d)
