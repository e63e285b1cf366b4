"""Secure by default, on a real `sixminutes serve` started as `make run` starts it (no token
option): the token it generates and keeps, the refusals (401 with a challenge, 403 for a foreign
Origin, 421 for a foreign Host), --auth-reads, and what its log tells the operator."""
from __future__ import annotations

import re
import stat
from urllib.parse import quote

import orjson
import pytest

from service_process import basic, config_toml, small_cdr, unique

MUTATIONS = [("POST", "/6minutes/restart"), ("DELETE", "/6minutes/data"),
             ("DELETE", "/6minutes/alerts"), ("POST", "/6minutes/cdr")]
READS = ["/6minutes/data", "/6minutes/alerts", "/6minutes/status", "/6minutes/rejected", "/metrics"]
EVIL = "http://evil.example"
FORM = "application/x-www-form-urlencoded"


def _link_token(stderr: str) -> str:
    """The token in the one-time link the service logged at start (the last start)."""
    links = re.findall(r"open (http://\S+/6minutes/)#token=(\S+)", stderr)
    assert links, stderr
    return links[-1][1]


def _form_body(profile: str) -> bytes:
    """What an HTML form (or mod_json_cdr's encode=true) sends."""
    return b"cdr=" + quote(orjson.dumps(small_cdr(profile=profile)).decode()).encode()


def test_without_a_token_option_a_token_is_generated_kept_0600_logged_and_reused(serve):
    service = serve(config=config_toml())
    path = service.token_file
    assert path.parent == service.state.parent and path.name == "s.sqlite.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    assert len(token) >= 32
    err = service.stderr_text()
    assert f"generated now and kept in {path} (mode 0600)" in err, err
    assert _link_token(err) == token
    assert f"open {service.url}/6minutes/#token={token}" in err
    assert 'curl -X DELETE -H "Authorization: Bearer $(cat ' in err and str(path) in err
    # A restart reuses it (FreeSWITCH's cred keeps working), and says so.
    service.restart()
    assert path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"the token is kept in {path}" in service.stderr_text()
    assert _link_token(service.stderr_text()) == token
    response = service.post_cdr(orjson.dumps(small_cdr()), headers=basic("freeswitch", token),
                                auth=False)
    assert response.status_code == 200, response.text


def test_without_a_token_option_every_mutation_needs_it_and_a_401_carries_challenges(serve):
    service = serve(config=config_toml())
    profile = unique("guarded")
    assert service.post_cdr(orjson.dumps(small_cdr(profile=profile))).status_code == 200
    before = (service.data(), service.alerts(), service.status()["by_source"])
    for method, path in MUTATIONS:
        response = service.http.request(method, path, content=orjson.dumps(small_cdr()))
        assert response.status_code == 401, (method, path, response.text)
        challenges = response.headers.get_list("www-authenticate")
        assert challenges[0] == 'Bearer realm="sixminutes"', challenges
        assert challenges[1].startswith('Basic realm="sixminutes"'), challenges
        assert response.json()["error"] == "http_401"
    assert (service.data(), service.alerts(), service.status()["by_source"]) == before
    # With the token, every one of them works.
    for method, path in MUTATIONS:
        response = service.http.request(method, path, headers=service.auth_headers(),
                                        content=orjson.dumps(small_cdr(profile=profile)))
        assert response.status_code == 200, (method, path, response.text)
    assert service.alerts() == [] and service.total(profile=profile) == 1


@pytest.mark.parametrize("with_token", [False, True])
def test_a_form_post_from_a_foreign_page_is_refused_token_or_not(serve, with_token):
    service = serve(config=config_toml())
    profile = unique("csrf")
    auth = service.auth_headers() if with_token else {}
    for origin in ({"Origin": EVIL}, {"Referer": f"{EVIL}/page.html"}, {"Origin": "null"}):
        response = service.post_cdr(_form_body(profile), FORM, auth=False,
                                    headers={**origin, **auth})
        assert response.status_code == 403, (origin, response.text)
        assert response.json()["error"] == "foreign_origin"
        assert "evil.example" in response.json()["message"] or origin == {"Origin": "null"}
        for method, path in MUTATIONS[:3]:
            refused = service.http.request(method, path, headers={**origin, **auth})
            assert refused.status_code == 403, (method, path, origin)
    assert service.total(profile=profile) == 0
    # The same form from the service's own page, or from no page at all (FreeSWITCH), is served.
    own = service.post_cdr(_form_body(profile), FORM, headers={"Origin": service.url})
    assert own.status_code == 200, own.text
    assert service.post_cdr(_form_body(unique("fs")), FORM).status_code == 200


def test_allowed_origins_and_hosts_come_from_flags_the_environment_and_the_config(serve):
    service = serve(config=config_toml(allowed_origins=["https://noc.example.net"],
                                       allowed_hosts=["six.example.net"]),
                    env={"SIXMINUTES_ALLOWED_ORIGINS": "https://grafana.example.net "
                                                       "http://wall.example.net:8080"},
                    args=["--allow-host", "mon.example.org", "--allow-host", "other.example"])
    auth = service.auth_headers()
    for origin in ("https://grafana.example.net", "http://wall.example.net:8080"):
        response = service.post_cdr(orjson.dumps(small_cdr()), headers={"Origin": origin})
        assert response.status_code == 200, (origin, response.text)
    # The environment replaced the config's list; flags would replace both.
    assert service.post_cdr(orjson.dumps(small_cdr()),
                            headers={"Origin": "https://noc.example.net"}).status_code == 403
    for host in ("mon.example.org", "other.example:8360"):
        assert service.get("/6minutes/status", headers={"Host": host}).status_code == 200, host
    assert service.get("/6minutes/status", headers={"Host": "six.example.net"}).status_code == 421
    assert service.http.delete("/6minutes/alerts", headers={**auth, "Host": "mon.example.org"}
                               ).status_code == 200


def test_a_foreign_host_is_misdirected_everywhere_dns_rebinding(serve):
    service = serve(config=config_toml(), args=["--public-url", "https://six.example.net/"])
    auth = service.auth_headers()
    for path in ("/6minutes", "/6minutes/status", "/6minutes/data", "/metrics",
                 "/6minutes/static/js/main.js"):
        response = service.get(path, headers={"Host": "evil.example"})
        assert response.status_code == 421, (path, response.text)
        assert response.json()["error"] == "misdirected"
    with service.http.stream("GET", "/6minutes/events", headers={"Host": "evil.example:80"}) as r:
        assert r.status_code == 421
    for method, path in MUTATIONS:
        response = service.http.request(method, path, headers={**auth, "Host": "evil.example"},
                                        content=orjson.dumps(small_cdr()))
        assert response.status_code == 421, (method, path)
    for host in (f"localhost:{service.port}", f"[::1]:{service.port}", "six.example.net"):
        assert service.get("/6minutes/data", headers={"Host": host}).status_code == 200, host


def test_auth_reads_makes_reads_need_the_token(serve):
    service = serve(config=config_toml(), args=["--auth-reads"])
    auth = service.auth_headers()
    for path in READS:
        response = service.get(path)
        assert response.status_code == 401, path
        assert "www-authenticate" in response.headers
        assert service.get(path, headers=auth).status_code == 200, path
    assert service.get("/6minutes/status", headers=auth).json()["auth_reads"] is True
    # The page's HTML and scripts hold no data: open, so that a reload works.
    for path in ("/6minutes", "/6minutes/", "/6minutes/static/js/main.js"):
        assert service.get(path).status_code == 200, path
    # The event stream takes the token as ?token= too (a browser's EventSource sends no header).
    with service.http.stream("GET", "/6minutes/events") as refused:
        assert refused.status_code == 401
    with service.http.stream("GET", "/6minutes/events", params={"token": service.token}) as r:
        assert r.status_code == 200
        assert next(r.iter_lines()).startswith("event: ready")
    assert service.get("/6minutes/data", params={"token": service.token}).status_code == 401


def test_an_in_memory_state_gets_a_token_per_process_and_logs_it(serve):
    service = serve(start=False, args=["--state", ":memory:"])
    service.start()
    token = _link_token(service.stderr_text())
    assert "generated for this process only" in service.stderr_text()
    assert not service.token_file.exists()
    assert service.post_cdr(orjson.dumps(small_cdr()), auth=False).status_code == 401
    response = service.post_cdr(orjson.dumps(small_cdr()),
                                headers={"Authorization": f"Bearer {token}"}, auth=False)
    assert response.status_code == 200, response.text


def test_a_configured_token_is_never_written_out_and_a_bad_origin_stops_the_start(serve):
    service = serve(token="my-own-token-1234")
    err = service.stderr_text()
    assert "my-own-token" not in err and "#token=<the token>" in err
    assert not service.token_file.exists()
    bad = serve(start=False, args=["--allow-origin", "noc.example.net"])
    assert bad.launch().wait(20) == 2
    assert "is not an origin" in bad.stderr_text() and "Traceback" not in bad.stderr_text()
    empty = serve(start=False, env={"SIXMINUTES_TOKEN": " "})
    assert empty.launch().wait(20) == 2
    assert "token is empty" in empty.stderr_text()
