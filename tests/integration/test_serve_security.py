"""Listening beyond loopback needs a token; credentials in a CouchDB URL never show anywhere."""
from __future__ import annotations

import base64
import subprocess

import httpx
import orjson

from service_process import Realistic, config_toml, small_cdr


def test_listening_on_all_addresses_without_a_token_exits_with_a_message(serve):
    service = serve(start=False, host="0.0.0.0")
    process = service.launch()
    try:
        code = process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("serve --host 0.0.0.0 without a token kept running")
    assert code != 0
    err = service.stderr_text()
    assert "token" in err and "0.0.0.0" in err, err
    assert "Traceback" not in err
    # The token from the environment is enough (and the service then answers).
    with_env = serve(host="0.0.0.0", env={"SIXMINUTES_TOKEN": "env-token"})
    response = with_env.post_cdr(orjson.dumps(small_cdr()), auth=False)
    assert response.status_code == 401
    response = with_env.post_cdr(orjson.dumps(small_cdr()),
                                 headers={"Authorization": "Bearer env-token"})
    assert response.status_code == 200, response.text


def test_couchdb_credentials_never_show_in_status_page_metrics_or_logs(pouchdb_factory, serve):
    server = pouchdb_factory()
    db, other = server.new_db(), server.new_db()
    server.set_admin("admin", "s3cret")  # from now on a wrong password is a 401
    good = f"http://admin:s3cret@127.0.0.1:{server.port}/{db}"
    bad = f"http://admin:wr0ng%40pass@127.0.0.1:{server.port}/{other}"  # "wr0ng@pass"
    service = serve(couchdb=[good, bad], since="0", config=config_toml(), log_level="debug")
    server.post_many(db, Realistic(seed=601).docs(5))
    service.wait_total(5, timeout=15)  # read once, by the feed with the right password

    def failing() -> dict | None:
        for source in service.status()["sources"]:
            if "401" in (source.get("last_error") or ""):
                return source
        return None

    refused = service.wait(failing, what="the wrong password's feed to report the 401")
    assert not refused["connected"] and "credentials" in refused["last_error"]
    names = [s["name"] for s in service.status()["sources"] if s["name"].startswith("couchdb:")]
    assert names == [f"couchdb:http://***@127.0.0.1:{server.port}/{db}",
                     f"couchdb:http://***@127.0.0.1:{server.port}/{other}"]

    secrets = ["s3cret", "wr0ng%40pass", "wr0ng@pass", "wr0ng",
               base64.b64encode(b"admin:s3cret").decode(),
               base64.b64encode(b"admin:wr0ng@pass").decode()]
    texts = {
        "status": service.get("/6minutes/status").text,
        "page": service.get("/6minutes").text,
        "page/": service.get("/6minutes/").text,
        "metrics": service.get("/metrics").text,
        "data": service.get("/6minutes/data").text,
        "alerts": service.get("/6minutes/alerts").text,
    }
    service.stop()  # the shutdown logs too
    texts["stderr"] = service.stderr_text()
    assert "couchdb" in texts["stderr"].lower()  # the feeds were logged (redacted)
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} shows in {where}"


def test_status_never_needs_credentials_but_mutations_do(serve):
    service = serve(token="tok")
    for path in ("/6minutes/status", "/6minutes/data", "/6minutes/alerts", "/metrics",
                 "/6minutes"):
        assert httpx.get(service.url + path).status_code == 200, path
