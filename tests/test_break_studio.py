"""The studio refuses, with a JSON error and no crash: cross-site requests (a foreign Host: DNS
rebinding; a non-JSON or foreign-Origin POST), a bad Content-Length, numbers too big for an
int, an unbounded candidate count and an infinite temperature (which saved a session that could
not be reopened)."""
import http.client
import json

import pytest
from cowrite_stub import StubGenerator

from gan_writer.cowrite.client import StudioClient, StudioError
from gan_writer.cowrite.server import serve_in_thread
from gan_writer.cowrite.session import Session, SessionError


@pytest.fixture
def served(tmp_path):
    session = Session(StubGenerator(), "poem", "wujue", path=tmp_path / "s.json")
    server, url = serve_in_thread(session)
    host, port = server.server_address[:2]
    yield session, StudioClient(url, timeout=10), host, port, tmp_path / "s.json"
    server.shutdown()
    server.server_close()


def _raw(host, port, method, path, body=b"", headers=None):
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data or b"{}")


def test_cross_site_requests_refused(served):
    session, client, host, port, _ = served
    op = json.dumps({"op": "write", "text": "白日依山尽"}).encode()
    status, _ = _raw(host, port, "GET", "/api/state", headers={"Host": "evil.example:80"})
    assert status == 403
    status, _ = _raw(host, port, "POST", "/api/op", op, {"Content-Type": "text/plain"})
    assert status == 403
    status, _ = _raw(host, port, "POST", "/api/op", op, {"Content-Type": "application/json", "Origin": "http://evil.example"})
    assert status == 403
    assert session.text == ""
    status, st = _raw(host, port, "POST", "/api/op", op, {"Content-Type": "application/json"})
    assert status == 200 and st["text"] == "白日依山尽，"


def test_bad_length_and_numbers(served):
    _, client, host, port, _ = served
    status, _ = _raw(host, port, "POST", "/api/op", b"{}", {"Content-Type": "application/json", "Content-Length": "abc"})
    assert status == 400
    status, body = _raw(host, port, "POST", "/api/op", b'{"op": "alternatives", "k": 1e400}',
                        {"Content-Type": "application/json"})
    assert status == 400 and "'k' must be a whole number" in body["error"]
    with pytest.raises(StudioError, match="1 to 64 candidates"):
        client.op("alternatives", k=10**6)
    with pytest.raises(StudioError, match="1 to 64 candidates"):
        client.op("branch", n=0)


def test_infinite_temperature_refused_and_session_reopens(served):
    _, client, _, _, path = served
    with pytest.raises(StudioError, match="finite"):
        client.op("temperature", temperature="inf")
    with pytest.raises(SessionError, match="finite"):
        Session(StubGenerator()).set_temperature(float("inf"))
    client.op("temperature", temperature=0.5)
    assert Session.open(path, StubGenerator()).state["temperature"] == 0.5
