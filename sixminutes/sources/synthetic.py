"""Realistic synthetic FreeSWITCH mod_json_cdr documents, with the truth kept aside.

Why: the benchmark, the ground-truth test and the ``--demo`` mode need many CDRs shaped
like real ones (see shared/fixtures/cdr) whose outcome is known without parsing them.
Static parts are prepared once per generator; each document is a few orjson calls on
flat dicts joined as bytes, so it is always valid JSON and tens of thousands come out
per second. Values under ``variables`` are URL-encoded as with encode-values=true.
"""
from __future__ import annotations

import math
import random
import time
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate
from typing import Iterable, Iterator
from urllib.parse import quote

import orjson

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
_REASONS = {"486": "Busy Here", "480": "Temporarily Unavailable", "487": "Request Terminated",
            "404": "Not Found", "603": "Decline", "403": "Forbidden", "484": "Address Incomplete",
            "488": "Not Acceptable Here", "408": "Request Timeout", "503": "Service Unavailable",
            "500": "Server Internal Error", "502": "Bad Gateway", "504": "Server Time-out"}
_ANSWERED_WEIGHT = (75.0, 30.0)  # normal, troubled: ASR ≈ 69% and ≈ 29%
_VENDORS = ("Sonus_UAC", "Sansay-VSXi", "HuaweiSoftx3000", "SBC", "-", "Acme_UAS")
_CODECS = (("PCMA", "8"), ("PCMU", "0"), ("G729", "18"))
_ZERO_VARS = ("last_hold_epoch", "last_hold_uepoch",
              "hold_accum_seconds", "hold_accum_usec", "hold_accum_ms", "resurrect_epoch",
              "resurrect_uepoch")
_STATIC_VARS = {
    "video_media_flow": "disabled", "text_media_flow": "disabled", "sip_via_protocol": "udp",
    "sip_cid_type": "pid", "max_forwards": "69", "dtmf_type": "rfc2833", "sip_cseq": "1",
    "rtp_use_codec_string": "G722,PCMU,PCMA,GSM", "remote_video_media_flow": "inactive",
    "remote_text_media_flow": "inactive", "hangup_after_bridge": "true",
    "continue_on_fail": "true", "send_silence_when_idle": "-1", "rtp_use_timer_name": "soft",
    "record_cdr": "true", "sip_h_P-Early-Media": "supported", "digits_dialed": "none",
    "progress_timeout": "12", "call_timeout": "300", "t38_passthru": "true",
    "export_vars": "t38_passthru", "sip_Privacy": "none", "rtp_2833_send_payload": "101",
    "rtp_2833_recv_payload": "101", "sip_user_agent": "FreeSWITCH-mod_sofia/1.10.9",
    **dict.fromkeys(_ZERO_VARS, "0"),
}


def encode(value: str) -> str:
    """URL-encode one value as FreeSWITCH does (space is %20, '+' is %2B, '/' kept)."""
    return quote(value, safe="/,()!*")


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


@dataclass(frozen=True, slots=True)
class _Carrier:
    name: str
    troubled: bool
    ip: str
    codec: tuple[str, str]
    r_sdp: str  # URL-encoded SDP bodies with SIDX / PORTX / IPX placeholders
    l_sdp: str


@dataclass(slots=True)
class _Call:
    """The choices for one call, before they are written out as a document."""

    carrier: _Carrier
    account: str
    account_enc: str
    egress: bool
    frm: str
    to: str
    sip: str | None
    codes: str  # where the SIP code is written: both, term, invite, none
    cause: str
    q850: str | None
    start_us: int
    answer_us: int
    end_us: int
    progress: int  # ms from start to 180, 0 when none
    media: int  # ms from start to 183, 0 when none
    billsec: int
    mos: str | None  # as FreeSWITCH writes it: "4.41", "nan", or no RTP at all
    fallback: bool
    uuid: str


class Generator:
    """Deterministic source of (document bytes, Truth) pairs for a given seed."""

    def __init__(self, seed: int = 0, carriers: int = 20, accounts: int = 3000,
                 troubled: tuple[str, ...] = ("kestrel",)) -> None:
        r = self._r = random.Random(seed)
        names = [CARRIER_NAMES[i % 20] + (f"-{i // 20}" if i >= 20 else "") for i in range(carriers)]
        self.carriers = tuple(self._carrier(n, n in troubled, i) for i, n in enumerate(names))
        self._carrier_cum = list(accumulate(r.uniform(0.3, 3.0) for _ in names))
        self.accounts: tuple[str, ...] = tuple(
            ODD_ACCOUNTS[i - 10] if 10 <= i < 10 + len(ODD_ACCOUNTS)
            else f"c{r.randrange(10**6):06d}" if r.random() < 0.7 else _slug(r)
            for i in range(accounts))
        self._enc_accounts = [encode(a) for a in self.accounts]
        self._dids = [r.choice(("33", "44", "1", "49", "34")) + f"{r.randrange(10**9):09d}"
                      for _ in range(accounts)]
        self._account_cum = list(accumulate(1.0 / (i + 1) ** 0.9 for i in range(accounts)))
        self._outcome_cum = tuple(
            list(accumulate([_ANSWERED_WEIGHT[t]] + [f[3 + t] for f in _FAILURES])) for t in (0, 1))
        self._switches = [(orjson.dumps({"core-uuid": _uuid(r), "switchname": f"fs{i}.voice.example.net"})[:-1],
                           f"10.0.{i}.{r.randrange(2, 250)}", f"192.0.2.{10 + i}") for i in range(1, 4)]
        self._static = orjson.dumps(_STATIC_VARS)[1:-1]

    def _carrier(self, name: str, troubled: bool, i: int) -> _Carrier:
        r = self._r
        ip = f"{r.choice(('198.51.100', '203.0.113'))}.{(i * 7 + 11) % 254 + 1}"
        codec, vendor = r.choice(_CODECS), r.choice(_VENDORS)

        def sdp(origin: str, addr: str) -> str:
            return encode(
                f"v=0\r\no={origin} SIDX SIDX IN IP4 {addr}\r\ns={origin}\r\nc=IN IP4 {addr}\r\n"
                f"t=0 0\r\nm=audio PORTX RTP/AVP {codec[1]} 101\r\na=rtpmap:{codec[1]} {codec[0]}/8000\r\n"
                "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n")
        return _Carrier(name, troubled, ip, codec, sdp(vendor, ip), sdp("FreeSWITCH", "IPX"))

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
            direction=("outbound" if c.egress else "inbound") if c.fallback
            else ("egress" if c.egress else "ingress"),
            account=c.account, end_epoch=end_epoch, billsec=c.billsec, duration=duration,
            answered=answered, sip_code=c.sip if c.sip and c.codes != "none" else "none",
            hangup_cause=c.cause, q850=c.q850, pdd_ms=c.media or c.progress or None,
            mos=float(c.mos) if c.mos and c.mos != "nan" else None,
            from_=c.frm, to=c.to, fallback=c.fallback)
        return self._document(c, duration), truth

    def _call(self, end_epoch: int) -> _Call:
        """Choose carrier, account, outcome and timing the way a carrier network looks."""
        r = self._r
        carrier = self.carriers[bisect(self._carrier_cum, r.random() * self._carrier_cum[-1])]
        a = bisect(self._account_cum, r.random() * self._account_cum[-1])
        egress = r.random() < 0.55
        other = r.choice(("33", "44", "1", "49", "81", "61", "55")) + f"{r.randrange(10**9):09d}"
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
        return _Call(carrier, account, self._enc_accounts[a], egress, frm, to, sip, codes, cause, q850, start_us,
                     answer_us, end_us, progress, media, billsec, mos, fallback, _uuid(r))

    def _document(self, c: _Call, duration: int) -> bytes:
        """Write the call out the way mod_json_cdr does (variables are URL-encoded strings)."""
        r = self._r
        head, local_ip, public_ip = self._switches[r.randrange(3)]
        sofia = c.carrier.name if c.fallback and not c.egress else f"{_dir(c)}-{c.carrier.name}"
        v = self._sip_vars(c, sofia, public_ip)
        stats = self._media_vars(v, c, local_ip, public_ip)
        _time_vars(v, c, duration)
        apps = _apps(r, c, sofia, v["sip_to_host"])
        v["last_app"] = apps[-1]["app_name"]
        v["current_application_data"] = encode(apps[-1]["app_data"])
        flows = _callflow(r, c, sofia, apps)
        if len(flows) == 2:
            v["transfer_history"] = f"ARRAY%3A%3A{c.start_us // 1_000_000}%3A{c.uuid}%3Abl_xfer%3A{c.to}/{sofia}-send-call/XML"
        return b"".join((
            head, b',"channel_data":{"state":"CS_REPORTING","direction":"', _fs_dir(c).encode(),
            b'","state_number":"11","flags":"0=1;1=1;3=1;38=1;39=1;41=1;52=1;105=1;110=1;111=1",'
            b'"caps":"1=1;2=1;3=1;4=1;5=1;6=1"},"callStats":', stats, b',"variables":',
            orjson.dumps(v)[:-1], b",", self._static, b'},"app_log":',
            orjson.dumps({"applications": apps}), b',"callflow":', orjson.dumps(flows), b"}"))

    def _sip_vars(self, c: _Call, sofia: str, public_ip: str) -> dict[str, str]:
        """Identity, SIP signalling and outcome variables, ccnq3's ones unless fallback."""
        r, car = self._r, c.carrier
        near, far = (public_ip, car.ip) if c.egress else (car.ip, public_ip)
        v: dict[str, str] = {"direction": _fs_dir(c), "uuid": c.uuid, "session_id": str(r.randrange(1, 99999))}
        if c.egress:
            v["sip_gateway_name"] = car.name if c.fallback else f"{car.name}-gw1"
        v["sofia_profile_name"] = v["recovery_profile_name"] = sofia
        v["sofia_profile_url"] = f"sip%3Amod_sofia%40{public_ip}%3A5060"
        v["channel_name"] = f"sofia/{sofia}/%2B{c.to}%40{car.ip}"
        # ccnq3 carries E.164 in ccnq_*; the SIP users then hold national or + forms.
        fu = v["sip_from_user"] = c.frm if c.fallback else "0" + c.frm[2:]
        tu = v["sip_to_user"] = c.to if c.fallback else "%2B" + c.to
        ftag, ttag = f"{r.getrandbits(48):012x}", f"{r.getrandbits(40):010x}"
        v.update(
            sip_from_user_stripped=c.frm, sip_from_uri=f"{fu}%40{near}", sip_from_host=near,
            sip_from_params="user%3Dphone", sip_from_display=c.frm, sip_from_tag=ftag,
            sip_to_uri=f"{tu}%40{far}", sip_to_host=far, sip_to_params="user%3Dphone",
            sip_to_display=tu, sip_to_tag=ttag, sip_req_uri=f"{tu}%40{far}%3A5060",
            sip_req_user=tu, sip_req_host=far, sip_req_port="5060", sip_req_params="user%3Dphone",
            sip_contact_user="mod_sofia", sip_contact_host=near, sip_contact_port="5060",
            sip_contact_uri=f"mod_sofia%40{near}%3A5060", sip_contact_params="transport%3Dudp",
            sip_via_host=car.ip, sip_via_port="5060", sip_received_ip=car.ip, sip_received_port="5060",
            sip_full_from=f"%22{c.frm}%22%20%3Csip%3A{fu}%40{near}%3E%3Btag%3D{ftag}",
            sip_full_to=f"%3Csip%3A{tu}%40{far}%3E%3Btag%3D{ttag}",
            sip_full_via=f"SIP/2.0/UDP%20{car.ip}%3A5060%3Bbranch%3Dz9hG4bK{r.getrandbits(64):016x}",
            sip_call_id=f"{r.getrandbits(96):024x}%40{car.ip}", sip_network_ip=car.ip,
            sip_network_port="5060", sip_local_network_addr=public_ip,
            **{"sip_P-Asserted-Identity": f"%2B{c.frm}"},
            caller_id=f"%22{c.frm}%22%20%3C{c.frm}%3E", effective_caller_id_number=f"%2B{c.frm}",
            call_uuid=c.uuid, DP_MATCH=f"ARRAY%3A%3A{c.to}%7C%3A{c.to}")
        if not c.fallback:
            v.update(ccnq_profile=car.name, ccnq_direction=_dir(c), ccnq_account=c.account_enc,
                     ccnq_from_e164=c.frm, ccnq_to_e164=c.to)
            v["sip_h_P-Charge-Info"] = f"sip%3A{c.account_enc}%40{public_ip}"
            if r.random() < 0.2:  # must lose against ccnq_account
                v["accountcode"] = f"legacy-{r.randrange(100)}"
        elif c.account != "unknown":
            v["accountcode"] = c.account_enc
        for h in range(r.randrange(6)):  # carriers' own headers: sizes vary like real CDRs
            v[f"sip_h_X-Route-{h}"] = f"hop%3D{h}%3Btrunk%3D{car.name}%3Bid%3D{r.getrandbits(64):x}"
        if c.egress and c.answer_us:
            peer = _uuid(r)
            v.update(bridge_uuid=peer, signal_bond=peer, last_bridge_to=peer,
                     originate_disposition="SUCCESS", DIALSTATUS="SUCCESS")
        v["endpoint_disposition"] = "ANSWER" if c.answer_us else "EARLY%20MEDIA" if c.media else "DISCONNECT"
        v["sip_hangup_disposition"] = (("recv_bye" if c.sip else "send_bye") if c.answer_us
                                       else "recv_refuse" if c.sip else "send_cancel")
        if c.codes in ("both", "invite"):
            v["sip_invite_failure_status"] = c.sip
            v["sip_invite_failure_phrase"] = encode(_REASONS[c.sip])
        if c.codes in ("both", "term"):
            v["sip_term_status"], v["proto_specific_hangup_cause"] = c.sip, f"sip%3A{c.sip}"
        if c.q850 is not None:
            v["hangup_cause"], v["hangup_cause_q850"], v["sip_term_cause"] = c.cause, c.q850, c.q850
            v["sip_reason"] = f"Q.850%3Bcause%3D{c.q850}%3Btext%3D%22{c.cause}%22"
        return v

    def _media_vars(self, v: dict[str, str], c: _Call, local_ip: str, public_ip: str) -> bytes:
        """SDP, codec and rtp_audio_* variables when media flowed; returns callStats."""
        if not (c.answer_us or c.media):
            return b"{}"
        r, car = self._r, c.carrier
        sid, port = str(r.randrange(10**9)), r.randrange(16384, 32768, 2)
        codec, pt = car.codec
        v["switch_r_sdp"] = car.r_sdp.replace("SIDX", sid).replace("PORTX", str(port + 2000))
        v["rtp_local_sdp_str"] = car.l_sdp.replace("SIDX", sid).replace("PORTX", str(port)).replace("IPX", public_ip)
        v.update(local_media_ip=local_ip, local_media_port=str(port), advertised_media_ip=public_ip,
                 remote_media_ip=car.ip, remote_media_port=str(port + 2000), read_codec=codec,
                 original_read_codec=codec, write_codec=codec, read_rate="8000", write_rate="8000",
                 original_read_rate="8000", rtp_use_codec_name=codec, rtp_use_codec_rate="8000",
                 rtp_use_codec_ptime="20", rtp_use_codec_channels="1", rtp_use_pt=pt,
                 rtp_audio_recv_pt=pt, rtp_use_ssrc=str(r.getrandbits(32)), audio_media_flow="sendrecv",
                 remote_audio_media_flow="sendrecv", rtp_last_audio_codec_string=f"{codec}%408000h%4020i%401c",
                 ep_codec_string=f"CORE_PCM_MODULE.{codec}%408000h%4020i%4064000b")
        if c.mos is None:
            return b"{}"
        media_ms = ((c.end_us - c.answer_us) if c.answer_us else (c.end_us - c.start_us - c.media * 1000)) // 1000
        rtp_in, rtp_out = _rtp(r, media_ms, c.mos)
        v.update({f"rtp_audio_in_{k}": x for k, x in rtp_in.items()})
        v.update({f"rtp_audio_{'' if k.startswith('rtcp') else 'out_'}{k}": x for k, x in rtp_out.items()})
        return orjson.dumps({"audio": {"inbound": _numbers(rtp_in), "outbound": _numbers(rtp_out)}})


def _dir(c: _Call) -> str:
    return "egress" if c.egress else "ingress"


def _fs_dir(c: _Call) -> str:
    return "outbound" if c.egress else "inbound"


def _time_vars(v: dict[str, str], c: _Call, duration: int) -> None:
    """Epochs, stamps and the *sec / *msec / *usec figures, derived as FreeSWITCH does."""
    prog_us = c.start_us + c.progress * 1000 if c.progress else 0
    media_us = c.start_us + c.media * 1000 if c.media else 0
    for name, us in (("start", c.start_us), ("profile_start", c.start_us), ("answer", c.answer_us),
                     ("progress", prog_us), ("progress_media", media_us), ("end", c.end_us),
                     ("bridge", c.answer_us if c.egress else 0)):
        v[f"{name}_epoch"], v[f"{name}_uepoch"] = str(us // 1_000_000), str(us)
        if us:
            v[f"{name}_stamp"] = time.strftime("%Y-%m-%d%%20%H%%3A%M%%3A%S", time.gmtime(us // 1_000_000))
    total_us = c.end_us - c.start_us
    bill_us = c.end_us - c.answer_us if c.answer_us else 0
    wait_us = c.answer_us - c.start_us if c.answer_us else 0
    v.update(duration=str(duration), mduration=str(total_us // 1000), uduration=str(total_us),
             billsec=str(c.billsec), billmsec=str(bill_us // 1000), billusec=str(bill_us),
             flow_billsec=str(c.billsec), flow_billmsec=str(bill_us // 1000), flow_billusec=str(bill_us),
             progresssec=str(c.progress // 1000), progressmsec=str(c.progress),
             progressusec=str(c.progress * 1000), progress_mediasec=str(c.media // 1000),
             progress_mediamsec=str(c.media), progress_mediausec=str(c.media * 1000),
             answersec=str(wait_us // 1_000_000), answermsec=str(wait_us // 1000),
             answerusec=str(wait_us), waitsec=str(wait_us // 1_000_000),
             waitmsec=str(wait_us // 1000), waitusec=str(wait_us))


def _callflow(r: random.Random, c: _Call, sofia: str, apps: list[dict[str, str]]) -> list[dict]:
    """One caller profile with its times; two when the call was transferred (newest first)."""
    profile = {"username": c.frm, "dialplan": "XML", "caller_id_name": c.frm, "ani": c.frm,
               "aniii": "", "caller_id_number": c.frm, "network_addr": c.carrier.ip, "rdnis": "",
               "destination_number": c.to, "uuid": c.uuid, "source": "mod_sofia",
               "context": sofia, "chan_name": f"sofia/{sofia}/+{c.to}@{c.carrier.ip}"}
    times = {"created_time": str(c.start_us), "profile_created_time": str(c.start_us),
             "progress_time": str(c.start_us + c.progress * 1000 if c.progress else 0),
             "progress_media_time": str(c.start_us + c.media * 1000 if c.media else 0),
             "answered_time": str(c.answer_us), "bridged_time": str(c.answer_us if c.egress else 0),
             "last_hold_time": "0", "hold_accum_time": "0", "hangup_time": str(c.end_us),
             "resurrect_time": "0", "transfer_time": "0"}
    ext = {"name": sofia, "number": c.to,
           "applications": [{"app_name": a["app_name"], "app_data": a["app_data"]} for a in apps]}
    flows = [{"dialplan": "XML", "profile_index": "1", "extension": ext,
              "caller_profile": profile, "times": times}]
    if r.random() < 0.35:  # transferred once, as ccnq3 does
        flows.insert(0, {**flows[0], "profile_index": "2",
                         "caller_profile": {**profile, "context": f"{sofia}-send-call"}})
    return flows


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


def _rtp(r: random.Random, media_ms: int, mos: str) -> tuple[dict[str, str], dict[str, str]]:
    """The rtp_audio_* figures of FreeSWITCH >= 1.6 for media_ms of 20 ms packets."""
    pk_in, pk_out = max(1, media_ms // 20 - r.randrange(3)), max(1, media_ms // 20)
    if mos == "nan":
        pk_in = 0
    skip = r.randrange(0, 60)
    flaws = 0 if mos == "nan" else int((4.5 - float(mos)) * r.uniform(5, 40))
    quality = "nan" if mos == "nan" else f"{max(0.0, 100 - flaws * 1.5):.2f}"
    rtp_in = {"raw_bytes": str(pk_in * 172), "media_bytes": str(pk_in * 160),
              "packet_count": str(pk_in), "media_packet_count": str(pk_in), "skip_packet_count": str(skip),
              "jitter_packet_count": str(r.randrange(3)), "dtmf_packet_count": "0",
              "cng_packet_count": "0", "flush_packet_count": "0", "largest_jb_size": "0",
              "jitter_min_variance": f"{r.uniform(0.5, 12):.2f}", "jitter_max_variance": f"{r.uniform(10, 400):.2f}",
              "jitter_loss_rate": f"{flaws / max(pk_in, 1):.2f}", "jitter_burst_rate": "0.00",
              "mean_interval": f"{r.uniform(19.8, 20.3):.2f}", "flaw_total": str(flaws),
              "quality_percentage": quality, "mos": mos}
    rtp_out = {"raw_bytes": str(pk_out * 172), "media_bytes": str(pk_out * 160),
               "packet_count": str(pk_out), "media_packet_count": str(pk_out), "skip_packet_count": "0",
               "dtmf_packet_count": "0", "cng_packet_count": "0",
               "rtcp_packet_count": str(media_ms // 5000), "rtcp_octet_count": str(media_ms // 5000 * 52)}
    return rtp_in, rtp_out


def _numbers(figures: dict[str, str]) -> dict[str, float | int]:
    """callStats uses JSON numbers; a non-finite one is left out (FreeSWITCH writes bare nan)."""
    out: dict[str, float | int] = {}
    for k, x in figures.items():
        if x != "nan":
            out[k] = float(x) if "." in x else int(x)
    return out


def _apps(r: random.Random, c: _Call, sofia: str, far: str) -> list[dict[str, str]]:
    """The dialplan applications a ccnq3-style call runs, with FreeSWITCH >= 1.6 stamps."""
    apps = [("set", f"ccnq_account={c.account}"), ("set", f"ccnq_direction={'egress' if c.egress else 'ingress'}"),
            ("export", "t38_passthru=true"), ("set", "progress_timeout=12"), ("set", "call_timeout=300"),
            ("hash", f"insert/calls/{c.carrier.name}/{c.uuid}"),
            ("limit", f"hash {c.carrier.name} {c.account} 20 !USER_BUSY"),
            ("set", "hangup_after_bridge=true"), ("log", f"INFO routing {c.frm} -> {c.to}")]
    chosen = r.sample(apps, r.randrange(2, len(apps)))
    chosen.append(("bridge", f"sofia/{sofia}/+{c.to}@{far}") if c.egress else ("answer", ""))
    return [{"app_name": n, "app_data": d, "app_stamp": str(c.start_us + 900 * i)}
            for i, (n, d) in enumerate(chosen)]


def _uuid(r: random.Random) -> str:
    h = f"{r.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:]}"


def _slug(r: random.Random) -> str:
    syl = ("ka", "lo", "mi", "ra", "ten", "vo", "zu", "bel", "cor", "dan", "fin", "gal")
    return "".join(r.choice(syl) for _ in range(r.randrange(2, 4))) + r.choice(("", "-telecom", "-sas", " ltd"))
