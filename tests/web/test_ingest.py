"""The ASGI endpoint of POST /6minutes/cdr (web/ingest.py) on a started service (in-memory
state, its journal in a temporary directory), called without the guard in front: its own
token check, each answer, the body limit, and a client gone before its body came."""
from __future__ import annotations

import asyncio
from typing import Any

from helpers import END, raw
from sixminutes.config import Config
from sixminutes.service import Service
from sixminutes.web.ingest import Ingest

TOKEN = "tok-ingest-51d0"
BEARER = (b"authorization", b"Bearer " + TOKEN.encode())
JSON = (b"content-type", b"application/json")


def run(messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]],
        scope: dict[str, Any] | None = None, **options: Any) -> tuple[list[dict[str, Any]], Service]:
    """What the endpoint sent for one request whose body comes as ``messages``."""
    async def main() -> tuple[list[dict[str, Any]], Service]:
        svc = Service(Config(token=TOKEN, state=":memory:", **options), clock=lambda: END + 60.0)
        await svc.start()
        sent: list[dict[str, Any]] = []
        pending = list(messages)

        async def receive() -> dict[str, Any]:
            return pending.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
        try:
            request = {"type": "http", "method": "POST", "path": "/6minutes/cdr",
                       "headers": headers, **(scope or {})}
            await Ingest(svc, TOKEN)(request, receive, send)
        finally:
            await svc.stop()
        return sent, svc
    return asyncio.run(main())


def answer(sent: list[dict[str, Any]]) -> tuple[int, dict[bytes, bytes], bytes]:
    start, body = sent
    assert start["type"] == "http.response.start" and body["type"] == "http.response.body"
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert int(headers[b"content-length"]) == len(body["body"])
    return start["status"], headers, body["body"]


def body(data: bytes) -> list[dict[str, Any]]:
    return [{"type": "http.request", "body": data, "more_body": False}]


def test_a_cdr_is_accepted_then_known_as_a_duplicate_and_counted_once():
    async def main() -> list[bytes]:
        svc = Service(Config(token=TOKEN, state=":memory:"), clock=lambda: END + 60.0)
        await svc.start()
        ingest, out = Ingest(svc, TOKEN), []
        try:
            for _ in range(2):
                messages = body(raw(uuid="u-1"))
                sent: list[dict[str, Any]] = []

                async def receive() -> dict[str, Any]:
                    return messages.pop(0)

                async def send(message: dict[str, Any]) -> None:
                    sent.append(message)
                await ingest({"type": "http", "method": "POST", "headers": [BEARER, JSON]},
                             receive, send)
                status, _, data = answer(sent)
                assert status == 200
                out.append(data)
            assert svc.engine.accepted == 1
        finally:
            await svc.stop()
        return out
    assert asyncio.run(main()) == [b'{"ok":true,"outcome":"accepted"}',
                                   b'{"ok":true,"outcome":"duplicate"}']


def test_without_the_token_it_is_401_with_a_challenge_and_nothing_is_read_or_counted():
    for headers in ([JSON], [JSON, (b"authorization", b"Bearer wrong")]):
        sent, svc = run(body(raw(uuid="u-2")), headers)
        status, extra, data = answer(sent)
        assert status == 401 and extra[b"www-authenticate"] == b'Bearer realm="sixminutes"'
        assert b'"error":"http_401"' in data
        assert svc.engine.accepted == 0


def test_a_request_the_guard_checked_is_not_checked_again():
    """(The guard marks what it verified: web/guard.py's TOKEN_CHECKED.) Without the mark,
    the same request without a token is refused, as above."""
    sent, svc = run(body(raw(uuid="u-3")), [JSON], scope={"sixminutes.token_checked": True})
    assert answer(sent)[0] == 200 and svc.engine.accepted == 1


def test_a_body_in_chunks_is_one_cdr():
    data = raw(uuid="u-3")
    chunks = [{"type": "http.request", "body": data[:10], "more_body": True},
              {"type": "http.request", "body": b"", "more_body": True},
              {"type": "http.request", "body": data[10:], "more_body": False}]
    sent, svc = run(chunks, [BEARER, JSON])
    assert answer(sent)[0] == 200 and svc.engine.accepted == 1


def test_what_is_no_cdr_is_400_and_a_rejected_cdr_422_saying_why():
    sent, svc = run(body(b"cdr=%zz"), [BEARER, (b"content-type", b"application/x-www-form-urlencoded")])
    status, _, data = answer(sent)
    assert status == 400 and b'"error":"bad_urlencoding"' in data
    assert svc.engine.outcomes[("http", "bad_body")] == 1
    sent, svc = run(body(raw(uuid="u-4", end_epoch="soon")), [BEARER, JSON])
    status, _, data = answer(sent)
    assert status == 422 and b'"error":"bad_end_epoch"' in data and svc.engine.accepted == 0


def test_over_the_limit_it_is_413_declared_or_read():
    declared = [BEARER, JSON, (b"content-length", b"5000")]
    sent, svc = run(body(b"{}"), declared, max_body_bytes=4096)
    status, _, data = answer(sent)
    assert status == 413 and b'"error":"too_large"' in data
    assert svc.engine.outcomes[("http", "too_large")] == 1
    chunked = [{"type": "http.request", "body": b"x" * 3000, "more_body": True}] * 2
    sent, svc = run(chunked, [BEARER, JSON], max_body_bytes=4096)
    assert answer(sent)[0] == 413 and svc.engine.outcomes[("http", "too_large")] == 1


def test_a_client_gone_before_its_body_came_gets_no_answer_and_nothing_is_counted():
    messages = [{"type": "http.request", "body": b'{"variables":', "more_body": True},
                {"type": "http.disconnect"}]
    sent, svc = run(messages, [BEARER, JSON])
    assert sent == [] and svc.engine.accepted == 0
    assert not any(n for (source, _), n in svc.engine.outcomes.items() if source == "http")


def test_encode_true_posts_are_journaled_as_checking_each_one_gave_the_broken_one_repaired():
    """FreeSWITCH's default form is checked for repair by the group commit's decode, not by
    each POST: what the journal holds (what a restart after kill -9 counts again) is the
    document cdr_from_body gives, repaired where old FreeSWITCH broke it, and both count."""
    from urllib.parse import quote_from_bytes

    from sixminutes.web.body import cdr_from_body

    good = raw(uuid="u-1", sip_full_from='"+8551" <sip:+8551@x>')
    broken = raw(uuid="u-2", sip_full_from='"+8551" <sip:+8551@x>').replace(b'\\"', b"%22")
    # (before #3152 a value's own %22 went out as it was: decoded, a raw quote)
    posts = [b"cdr=" + quote_from_bytes(doc, safe="").encode().replace(b"%2522", b"%22")
             for doc in (good, broken)]
    form = (b"content-type", b"application/x-www-form-urlencoded")

    async def main() -> tuple[list[int], list[bytes], int]:
        svc = Service(Config(token=TOKEN, state=":memory:"), clock=lambda: END + 60.0)
        await svc.start()
        statuses: list[int] = []

        async def post(data: bytes) -> None:
            messages, sent = body(data), []

            async def receive() -> dict[str, Any]:
                return messages.pop(0)

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)
            await Ingest(svc, TOKEN)({"type": "http", "method": "POST",
                                      "headers": [BEARER, form]}, receive, send)
            statuses.append(answer(sent)[0])
        try:
            await asyncio.gather(*(post(data) for data in posts))  # (one group commit)
            journaled = [doc for _, _, doc in svc.journal.after(0)]
            svc.count_waiting()
            return statuses, journaled, svc.engine.accepted
        finally:
            await svc.stop()
    statuses, journaled, accepted = asyncio.run(main())
    assert statuses == [200, 200] and accepted == 2
    expected = [cdr_from_body("application/x-www-form-urlencoded", data) for data in posts]
    assert journaled == expected and expected == [good, broken]  # (raw quotes: %22 again)
