"""The mod_json_cdr document of a synthetic call: what FreeSWITCH would write for it.

``synthetic.py`` chooses the calls (carriers, outcomes, timing); this module writes each one
as FreeSWITCH does, with the size and shape of the real fixtures: ``channel_data``,
``callStats``, ``variables`` URL-encoded as with encode-values=true (SIP headers, SDP
bodies, the RTP figures, epochs and their derived *sec/*msec/*usec), ``app_log`` and a
``callflow`` array. A few orjson calls on flat dicts joined as bytes: always valid JSON.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from urllib.parse import quote

import orjson

__all__ = ["Carrier", "CallPlan", "write", "encode", "uuid4"]

_REASONS = {"486": "Busy Here", "480": "Temporarily Unavailable", "487": "Request Terminated",
            "404": "Not Found", "603": "Decline", "403": "Forbidden", "484": "Address Incomplete",
            "488": "Not Acceptable Here", "408": "Request Timeout", "503": "Service Unavailable",
            "500": "Server Internal Error", "502": "Bad Gateway", "504": "Server Time-out"}
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
_STATIC = orjson.dumps(_STATIC_VARS)[1:-1]
"""The variables every document has, written once."""


def encode(value: str) -> str:
    """URL-encode one value as FreeSWITCH does (space is %20, '+' is %2B, '/' kept)."""
    return quote(value, safe="/,()!*")


@dataclass(frozen=True, slots=True)
class Carrier:
    name: str
    troubled: bool
    ip: str
    codec: tuple[str, str]
    r_sdp: str  # URL-encoded SDP bodies with SIDX / PORTX / IPX placeholders
    l_sdp: str


@dataclass(slots=True)
class CallPlan:
    """The choices for one call, before they are written out as a document."""

    carrier: Carrier
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


def write(r: random.Random, c: CallPlan, duration: int,
          switches: list[tuple[bytes, str, str]]) -> bytes:
    """The call written out the way mod_json_cdr does (variables are URL-encoded strings), on
    one of ``switches`` (its document head, local and public addresses)."""
    head, local_ip, public_ip = switches[r.randrange(len(switches))]
    sofia = c.carrier.name if c.fallback and not c.egress else f"{_dir(c)}-{c.carrier.name}"
    v = _sip_vars(r, c, sofia, public_ip)
    stats = _media_vars(r, v, c, local_ip, public_ip)
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
        orjson.dumps(v)[:-1], b",", _STATIC, b'},"app_log":',
        orjson.dumps({"applications": apps}), b',"callflow":', orjson.dumps(flows), b"}"))

def _sip_vars(r: random.Random, c: CallPlan, sofia: str, public_ip: str) -> dict[str, str]:
    """Identity, SIP signalling and outcome variables, ccnq3's ones unless fallback."""
    car = c.carrier
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
        peer = uuid4(r)
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


def _media_vars(r: random.Random, v: dict[str, str], c: CallPlan, local_ip: str,
                public_ip: str) -> bytes:
    """SDP, codec and rtp_audio_* variables when media flowed; returns callStats."""
    if not (c.answer_us or c.media):
        return b"{}"
    car = c.carrier
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


def _dir(c: CallPlan) -> str:
    return "egress" if c.egress else "ingress"


def _fs_dir(c: CallPlan) -> str:
    return "outbound" if c.egress else "inbound"


def _time_vars(v: dict[str, str], c: CallPlan, duration: int) -> None:
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


def _callflow(r: random.Random, c: CallPlan, sofia: str, apps: list[dict[str, str]]) -> list[dict]:
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


def _apps(r: random.Random, c: CallPlan, sofia: str, far: str) -> list[dict[str, str]]:
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


def uuid4(r: random.Random) -> str:
    """A version-4 UUID drawn from r, so that a seed gives the same documents."""
    h = f"{r.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:]}"
