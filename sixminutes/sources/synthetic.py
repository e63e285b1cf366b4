"""Realistic synthetic FreeSWITCH traffic: calls chosen as a carrier network makes them,
written out as mod_json_cdr documents (see ``mod_json_cdr.py``), with the truth kept aside.

Why: the benchmark, the ground-truth test and the ``--demo`` mode need many CDRs shaped
like real ones (see shared/fixtures/cdr) whose outcome is known without parsing them;
tens of thousands come out per second.
"""
from __future__ import annotations

import asyncio
import math
import random
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate
from typing import Awaitable, Callable, Iterator

import orjson

from .mod_json_cdr import CallPlan, Carrier, encode, uuid4, write

__all__ = ["Truth", "Generator", "CARRIER_NAMES", "encode"]

CARRIER_NAMES = (
    "acme-tel", "bluefin", "kestrel", "northwind", "orbit-voice", "polaris", "quanta",
    "riverbed", "sable", "tundra", "umbra", "vega", "wavecrest", "xenon", "yarrow",
    "zephyr", "atlas", "borealis", "cobalt", "delta-link",
)
# Names real platforms end up with; they also exercise URL-decoding and label escaping.
ODD_ACCOUNTS = ("Café Zoë", "o'brien & sons", 'acme "gold"', "back\\slash",
                "two\nlines", "100% literal %20", "a+b=c;d", "trailing space ")
# (sip code or None, hangup_cause, q850, weight on a normal carrier, on a troubled one, kind)
_FAILURES = (
    ("486", "USER_BUSY", "17", 7.0, 4.0, "fast"),
    ("480", "NO_USER_RESPONSE", "18", 6.0, 4.0, "ring"),
    ("487", "ORIGINATOR_CANCEL", "487", 10.0, 6.0, "ring"),
    ("404", "UNALLOCATED_NUMBER", "1", 3.0, 2.0, "fast"),
    ("603", "CALL_REJECTED", "21", 2.0, 1.0, "ring"),
    ("403", "CALL_REJECTED", "21", 0.6, 1.0, "fast"),
    ("484", "INVALID_NUMBER_FORMAT", "28", 0.6, 0.5, "fast"),
    ("488", "INCOMPATIBLE_DESTINATION", "88", 0.4, 0.5, "fast"),
    ("408", "RECOVERY_ON_TIMER_EXPIRE", "102", 1.5, 5.0, "timeout"),
    ("503", "NORMAL_TEMPORARY_FAILURE", "41", 1.5, 22.0, "fast"),
    ("500", "NORMAL_TEMPORARY_FAILURE", "41", 0.4, 4.0, "fast"),
    ("502", "NETWORK_OUT_OF_ORDER", "38", 0.3, 10.0, "fast"),
    ("504", "RECOVERY_ON_TIMER_EXPIRE", "102", 0.2, 2.0, "timeout"),
    (None, "NO_ANSWER", "19", 1.5, 1.0, "ring"),
    (None, "RECOVERY_ON_TIMER_EXPIRE", "102", 0.5, 2.0, "timeout"),
    (None, "NORMAL_TEMPORARY_FAILURE", "41", 0.3, 3.0, "fast"),
    (None, "DESTINATION_OUT_OF_ORDER", "27", 0.3, 2.0, "fast"),
    (None, "NORMAL_CIRCUIT_CONGESTION", "34", 0.2, 2.0, "fast"),
    (None, "SWITCH_CONGESTION", "42", 0.1, 1.0, "fast"),
    (None, "NO_ROUTE_DESTINATION", "3", 0.3, 0.3, "fast"),
)
_ANSWERED_WEIGHT = (75.0, 30.0)  # normal, troubled: ASR ≈ 69% and ≈ 29%
_VENDORS = ("Sonus_UAC", "Sansay-VSXi", "HuaweiSoftx3000", "SBC", "-", "Acme_UAS")
_CODECS = (("PCMA", "8"), ("PCMU", "0"), ("G729", "18"))


_DIDS = (("339", 8, "FR"), ("44207", 7, "GB"), ("12125", 6, "US"), ("4930", 8, "DE"),
         ("3491", 7, "ES"))
"""The accounts' numbers: (E.164 prefix, random digits after it, its country)."""
_CALLED = (("336", 8, "FR"), ("44780", 7, "GB"), ("12125", 6, "US"), ("49151", 8, "DE"),
           ("8190", 8, "JP"), ("6140", 7, "AU"), ("55119", 8, "BR"))
"""The numbers they call, and call them from (mobiles, a New York line)."""
COUNTRY = {prefix: country for prefix, _, country in _DIDS + _CALLED}
"""Number prefix → the country the generator meant (see :func:`country_of_number`)."""


def _number(plan: tuple[str, int, str], draw: int) -> str:
    prefix, digits, _ = plan
    return prefix + f"{draw:09d}"[:digits]


def country_of_number(number: str) -> str:
    """The country a generated number was drawn for, from its prefix (the truth of a test)."""
    return next(country for prefix, country in COUNTRY.items() if number.startswith(prefix))


@dataclass(frozen=True, slots=True)
class Truth:
    """What the generator chose for one CDR, independent of any parsing.

    ``sip_code`` and ``hangup_cause`` are "none" when the CDR carries none; ``fallback``
    is True when the CDR has only plain FreeSWITCH variables (no ccnq_*).
    """

    uuid: str
    profile: str
    direction: str
    account: str
    end_epoch: int
    billsec: int
    duration: int
    answered: bool
    sip_code: str
    hangup_cause: str
    q850: str | None
    pdd_ms: int | None
    mos: float | None
    from_: str = ""
    to: str = ""
    fallback: bool = False


class Generator:
    """Deterministic source of (document bytes, Truth) pairs for a given seed."""

    def __init__(self, seed: int = 0, carriers: int = 20, accounts: int = 3000,
                 troubled: tuple[str, ...] = ("kestrel",),
                 troubled_share: float | None = None) -> None:
        """``troubled_share``: the share of the calls the troubled carriers carry together
        (None: a carrier's weight is drawn like any other's, 0.3 to 3.0)."""
        r = self._r = random.Random(seed)
        names = [CARRIER_NAMES[i % 20] + (f"-{i // 20}" if i >= 20 else "") for i in range(carriers)]
        self.carriers = tuple(self._carrier(n, n in troubled, i) for i, n in enumerate(names))
        weights = [r.uniform(0.3, 3.0) for _ in names]
        sick = [i for i, c in enumerate(self.carriers) if c.troubled]
        if troubled_share is not None and sick and len(sick) < len(names):
            healthy = sum(w for i, w in enumerate(weights) if i not in sick)
            for i in sick:  # their weights, so that together they carry troubled_share
                weights[i] = healthy * troubled_share / (1 - troubled_share) / len(sick)
        self._carrier_cum = list(accumulate(weights))
        self.accounts: tuple[str, ...] = tuple(
            ODD_ACCOUNTS[i - 10] if 10 <= i < 10 + len(ODD_ACCOUNTS)
            else f"c{r.randrange(10**6):06d}" if r.random() < 0.7 else _slug(r)
            for i in range(accounts))
        self._enc_accounts = [encode(a) for a in self.accounts]
        self._dids = [_number(r.choice(_DIDS), r.randrange(10**9)) for _ in range(accounts)]
        self._account_cum = list(accumulate(1.0 / (i + 1) ** 0.9 for i in range(accounts)))
        self._outcome_cum = tuple(
            list(accumulate([_ANSWERED_WEIGHT[t]] + [f[3 + t] for f in _FAILURES])) for t in (0, 1))
        self._switches = [(orjson.dumps({"core-uuid": uuid4(r), "switchname": f"fs{i}.voice.example.net"})[:-1],
                           f"10.0.{i}.{r.randrange(2, 250)}", f"192.0.2.{10 + i}") for i in range(1, 4)]
        
    def _carrier(self, name: str, troubled: bool, i: int) -> Carrier:
        r = self._r
        ip = f"{r.choice(('198.51.100', '203.0.113'))}.{(i * 7 + 11) % 254 + 1}"
        codec, vendor = r.choice(_CODECS), r.choice(_VENDORS)

        def sdp(origin: str, addr: str) -> str:
            return encode(
                f"v=0\r\no={origin} SIDX SIDX IN IP4 {addr}\r\ns={origin}\r\nc=IN IP4 {addr}\r\n"
                f"t=0 0\r\nm=audio PORTX RTP/AVP {codec[1]} 101\r\na=rtpmap:{codec[1]} {codec[0]}/8000\r\n"
                "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n")
        return Carrier(name, troubled, ip, codec, sdp(vendor, ip), sdp("FreeSWITCH", "IPX"))

    def corpus(self, n: int, start: int, span: int = 86400) -> Iterator[tuple[bytes, Truth]]:
        """n CDRs whose end_epochs follow a daily traffic curve over [start, start+span), in order."""
        r = self._r
        epochs: list[int] = []
        while len(epochs) < n:
            t = start + r.randrange(span)
            busy = max(0.0, math.sin(math.pi * ((t % 86400) / 3600 - 6) / 16))
            if r.random() < 0.25 + 0.75 * busy:
                epochs.append(t)
        epochs.sort()
        for t in epochs:
            yield self.cdr(t)

    def cdr(self, end_epoch: int) -> tuple[bytes, Truth]:
        """One compact JSON document of a call that ended at end_epoch, and its Truth."""
        c = self._call(end_epoch)
        answered = c.answer_us > 0
        duration = end_epoch - c.start_us // 1_000_000
        truth = Truth(
            uuid=c.uuid, profile=c.carrier.name,
            direction="egress" if c.egress else "ingress",  # (FreeSWITCH's outbound, inbound)
            account=c.account, end_epoch=end_epoch, billsec=c.billsec, duration=duration,
            answered=answered, sip_code=c.sip if c.sip and c.codes != "none" else "none",
            hangup_cause=c.cause, q850=c.q850, pdd_ms=c.media or c.progress or None,
            mos=float(c.mos) if c.mos and c.mos != "nan" else None,
            from_=c.frm, to=c.to, fallback=c.fallback)
        return write(self._r, c, duration, self._switches), truth

    def _call(self, end_epoch: int) -> CallPlan:
        """Choose carrier, account, outcome and timing the way a carrier network looks."""
        r = self._r
        carrier = self.carriers[bisect(self._carrier_cum, r.random() * self._carrier_cum[-1])]
        a = bisect(self._account_cum, r.random() * self._account_cum[-1])
        egress = r.random() < 0.55
        other = _number(r.choice(_CALLED), r.randrange(10**9))
        frm, to = (self._dids[a], other) if egress else (other, self._dids[a])
        cum = self._outcome_cum[carrier.troubled]
        k = bisect(cum, r.random() * cum[-1])
        if k == 0:  # answered; FreeSWITCH has no SIP status when it sent the BYE itself
            sip, cause, q850, kind = ("200" if r.random() < 0.65 else None), "NORMAL_CLEARING", "16", "answer"
            if r.random() < 0.015:
                cause, q850 = "MEDIA_TIMEOUT", "604"
            codes = "term" if sip else "none"
        else:
            sip, cause, q850, _, _, kind = _FAILURES[k - 1]
            codes = "none" if sip is None else "both" if r.random() < 0.75 else r.choice(("term", "invite"))
        if r.random() < 0.002:
            cause, q850 = "none", None  # a CDR without hangup_cause at all
        pdd = int(r.lognormvariate(math.log(4500 if carrier.troubled else 2200), 0.5))
        mode = r.random() if kind in ("answer", "ring") else 1.0 if kind == "timeout" else r.random() + 0.4
        progress = pdd if mode < 0.55 else pdd + r.randrange(200, 3000) if 0.7 <= mode < 0.8 else 0
        media = pdd if 0.55 <= mode < 0.9 else 0
        if kind == "answer":
            setup = pdd + int(r.lognormvariate(8.9, 0.6))
        elif kind == "ring":
            setup = max(progress, media) + int(r.lognormvariate(9.9 if sip != "487" else 9.3, 0.5))
        elif kind == "timeout":
            setup = 32000 + r.randrange(500)
        else:
            setup = max(progress, media) + r.randrange(60, 1500)
        billsec = _billsec(r, carrier.troubled) if kind == "answer" else 0
        end_us = end_epoch * 1_000_000 + r.randrange(1_000_000)
        answer_us = 0
        if kind == "answer":  # same second arithmetic as FreeSWITCH: billsec = end - answer epochs
            answer_us = end_us - billsec * 1_000_000 - r.randrange(end_us % 1_000_000 + 1)
        start_us = (answer_us or end_us) - setup * 1000
        mos = None
        if answer_us or media:
            m = (r.gauss(3.2, 0.5) if carrier.troubled else
                 r.gauss(4.35, 0.08) if r.random() < 0.95 else r.gauss(3.6, 0.4))
            mos = "nan" if r.random() < 0.01 else f"{min(4.5, max(1.0, m)):.2f}"
        fallback = r.random() < 0.1
        account = self.accounts[a] if not fallback or r.random() > 0.03 else "unknown"
        return CallPlan(carrier, account, self._enc_accounts[a], egress, frm, to, sip, codes, cause, q850, start_us,
                     answer_us, end_us, progress, media, billsec, mos, fallback, uuid4(r))


def _billsec(r: random.Random, troubled: bool) -> int:
    """Heavy-tailed talk time: many very short calls, a lognormal body, a Pareto tail."""
    u = r.random()
    if u < (0.40 if troubled else 0.04):
        return 0  # answered then dropped within the second
    if u < (0.55 if troubled else 0.20):
        return r.randrange(1, 6)
    if u < 0.98:
        return min(14400, max(6, int(r.lognormvariate(math.log(75), 1.0))))
    return min(14400, int(600 * r.paretovariate(1.3)))



def _slug(r: random.Random) -> str:
    syl = ("ka", "lo", "mi", "ra", "ten", "vo", "zu", "bel", "cor", "dan", "fin", "gal")
    return "".join(r.choice(syl) for _ in range(r.randrange(2, 4))) + r.choice(("", "-telecom", "-sas", " ltd"))


DEMO_TROUBLED_SHARE = 0.1
"""The share of the demo's calls its carrier in trouble carries."""


async def demo(ingest: Callable[[bytes, str], Awaitable[object]], clock: Callable[[], float],
               rate: float) -> None:
    """`serve --demo`: synthetic traffic through the same path as POSTed CDRs, twenty
    carriers, one of them (kestrel) in trouble and carrying a tenth of the calls, so that at
    the default rate its incidents open on evidence within the first minutes (docs/alerts.md)."""
    seed = int(clock())
    generator, jitter = Generator(seed=seed, troubled_share=DEMO_TROUBLED_SHARE), random.Random(seed)
    interval = 1.0 / max(rate, 0.01)
    while True:
        raw, _ = generator.cdr(int(clock()) - jitter.randrange(0, 30))
        await ingest(raw, "demo")
        await asyncio.sleep(interval * jitter.uniform(0.2, 1.8))
