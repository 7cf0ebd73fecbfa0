"""The co-writing studio's local web server: one model, one session, a JSON API and one page.

Standard library only (``http.server``): ``GET /`` serves ``static/studio.html`` (plain
JavaScript); the API is

* ``GET /api/state`` — the document, candidates (with form and safety reports), endings,
  steering, temperature, whether undo/redo are possible; texts both as the model wrote them
  (``text``) and as a writer reads them (``display``, see :meth:`Studio.state`);
* ``POST /api/op`` with ``{"op": NAME, ...arguments}`` — one session operation (see
  :data:`OPS`); answers the new state, or ``{"error"}`` with status 400 (bad request) or
  409 (cancelled). Span, candidate and ending indices (``a``, ``b``, ``at``, ``i``, ``j``)
  are 0-based, ``b`` exclusive, as :class:`~gan_writer.cowrite.session.Session` takes them;
  error messages number them from 1, as the page (and the terminal) shows them;
* ``GET /api/progress`` — ``{"busy", "step", "steps"}`` of the generation under way;
* ``POST /api/cancel`` — stop it (the session stays as it was);
* ``GET /api/export?fmt=text|markdown|fountain|json`` — the export, as a download.

Requests are served on threads, but operations run one at a time under a lock, so
concurrent requests queue rather than race on the model or the session. The server binds
to 127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from gan_writer.cowrite.decoding import Cancelled
from gan_writer.cowrite.export import FORMATS
from gan_writer.cowrite.session import Session, SessionError
from gan_writer.writing.readable import readable_in

PAGE = Path(__file__).with_name("static") / "studio.html"
EXT = {"text": "txt", "markdown": "md", "fountain": "fountain", "json": "json"}
MAX_BODY = 1 << 20
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


class Studio:
    """A session behind a lock, with the progress and cancel flag of the generation under way."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.lock = threading.Lock()
        self.cancel = threading.Event()
        self.progress = {"busy": False, "step": 0, "steps": 0, "op": None}

    def _on_progress(self, step: int, steps: int) -> None:
        self.progress.update(step=step, steps=steps)

    def state(self) -> dict:
        """The page's view of the session. Each span and candidate has its ``text`` (the model's,
        as the session stores it) and a ``display`` (as a writer reads it:
        :func:`gan_writer.writing.readable.readable_in`); the endings likewise ``texts`` and
        ``displays``. The session's own state is not modified."""
        s = self.session
        st = s.state
        br = st["branch"]

        def shown(items: list[dict]) -> list[dict]:
            return [{**item, "display": readable_in(s, item["text"])} for item in items]

        endings = None
        if br is not None:
            texts = [s.join(x) for x in br["siblings"]]
            endings = {"count": len(texts), "active": br["active"], "texts": texts,
                       "displays": [readable_in(s, t) for t in texts]}
        return {"kind": s.kind, "form": s.form, "title": s.title, "logline": s.logline,
                "characters": [{"name": n, "description": d} for n, d in s.characters],
                "text": s.text, "spans": shown(st["spans"]),
                "candidates": shown(st["candidates"]), "target": st["target"], "steer": st["steer"], "ban": st["ban"],
                "temperature": st["temperature"], "can_undo": s.pos > 0, "can_redo": s.pos + 1 < len(s.states),
                "endings": endings, "operations": len(s.log), "session_file": str(s.path) if s.path else None}

    def run(self, body: dict) -> dict:
        """Apply one operation (queued behind the lock). Raises SessionError / ValueError / Cancelled / KeyError."""
        name = body.get("op")
        if name not in OPS:
            raise SessionError(f"unknown op {name!r}; one of {', '.join(OPS)}")
        with self.lock:
            self.cancel.clear()
            self.progress.update(busy=True, step=0, steps=0, op=name)
            try:
                OPS[name](self, body)
            finally:
                self.progress.update(busy=False, op=None)
            return self.state()

    def gen_kwargs(self) -> dict:
        return {"progress": self._on_progress, "cancel": self.cancel}


def _i(body: dict, key: str, default=None) -> int:
    """``body[key]`` as a whole number (an int, an integral float or a string of digits)."""
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or (
            isinstance(value, float) and not value.is_integer()):
        raise SessionError(f"{key!r} must be a whole number, got {value!r}")
    try:
        return int(value)
    except (ValueError, OverflowError):
        raise SessionError(f"{key!r} must be a whole number, got {value!r}") from None


def _f(body: dict, key: str) -> float:
    """``body[key]`` as a number (an int, a float or a numeric string)."""
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SessionError(f"{key!r} must be a number, got {value!r}")
    try:
        return float(value)
    except ValueError:
        raise SessionError(f"{key!r} must be a number, got {value!r}") from None


def _text(body: dict, key: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        raise SessionError(f"{key!r} must be a string (the text to write), got {type(value).__name__}")
    return value


def _words(body: dict, key: str) -> list[str]:
    value = body.get(key, [])
    if isinstance(value, str):
        value = value.replace("，", ",").replace(",", " ").split()
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        raise SessionError(f"{key!r} must be a list of words or a comma-separated string")
    return value


OPS = {
    "write": lambda st, b: st.session.write(_text(b, "text")),
    "alternatives": lambda st, b: st.session.alternatives(_i(b, "k", 3), **st.gen_kwargs()),
    "choose": lambda st, b: st.session.choose(_i(b, "i")),
    "continue": lambda st, b: st.session.continue_(**st.gen_kwargs()),
    "rewrite": lambda st, b: st.session.rewrite(_i(b, "a"), _i(b, "b"), _words(b, "keywords"), _i(b, "k", 3), **st.gen_kwargs()),
    "infill": lambda st, b: st.session.infill(_i(b, "at"), _i(b, "k", 3), **st.gen_kwargs()),
    "branch": lambda st, b: st.session.branch(_i(b, "n", 3), **st.gen_kwargs()),
    "switch": lambda st, b: st.session.switch(_i(b, "j")),
    "steer": lambda st, b: st.session.steer(_words(b, "keywords")),
    "ban": lambda st, b: st.session.ban(_words(b, "words")),
    "temperature": lambda st, b: st.session.set_temperature(_f(b, "temperature")),
    "undo": lambda st, b: st.session.undo(),
    "redo": lambda st, b: st.session.redo(),
}


class Handler(BaseHTTPRequestHandler):
    """Routes of the API (see the module docstring); ``server.studio`` is the :class:`Studio`."""

    server_version = "gan-writer-studio"

    def log_message(self, fmt, *args) -> None:  # quiet: the terminal shows the URL only
        pass

    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _foreign(self, post: bool) -> str | None:
        """Why a request looks like it comes from another web site (DNS rebinding, a cross-site
        form post), or None. A server bound to loopback answers only Host names of this machine;
        a POST must be JSON (a page elsewhere cannot send that without the browser asking first)
        and, with an Origin, from this server's own origin."""
        bound = str(self.server.server_address[0])
        host = urlparse("//" + (self.headers.get("Host") or "")).hostname or ""
        if bound in LOOPBACK_NAMES and host not in LOOPBACK_NAMES:
            return f"Host {host!r} is not this machine (the studio serves loopback only)"
        if post:
            if (self.headers.get("Content-Type") or "").split(";")[0].strip().lower() != "application/json":
                return "POST requests must send Content-Type: application/json"
            origin = self.headers.get("Origin")
            if origin and urlparse(origin).netloc != (self.headers.get("Host") or ""):
                return f"Origin {origin!r} is not this studio"
        return None

    def do_GET(self) -> None:
        url = urlparse(self.path)
        why = self._foreign(post=False)
        if why:
            return self._json(403, {"error": why})
        studio: Studio = self.server.studio
        if url.path in ("/", "/index.html"):
            self._send(200, PAGE.read_bytes(), "text/html; charset=utf-8")
        elif url.path == "/api/state":
            self._json(200, studio.state())
        elif url.path == "/api/progress":
            self._json(200, dict(studio.progress))
        elif url.path == "/api/export":
            fmt = parse_qs(url.query).get("fmt", ["text"])[0]
            if fmt not in FORMATS:
                return self._json(400, {"error": f"fmt {fmt!r}: one of {', '.join(FORMATS)}"})
            try:
                text = studio.session.export(fmt)
            except ValueError as err:
                return self._json(400, {"error": str(err)})
            name = f"session.{EXT[fmt]}"
            self._send(200, text.encode("utf-8"), "text/plain; charset=utf-8",
                       {"Content-Disposition": f'attachment; filename="{name}"'})
        else:
            self._json(404, {"error": f"no such page {url.path}"})

    def do_POST(self) -> None:
        studio: Studio = self.server.studio
        path = urlparse(self.path).path
        why = self._foreign(post=True)
        if why:
            return self._json(403, {"error": why})
        if path == "/api/cancel":
            studio.cancel.set()
            return self._json(200, {"cancelling": studio.progress["busy"]})
        if path != "/api/op":
            return self._json(404, {"error": f"no such endpoint {path}"})
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            return self._json(400, {"error": "Content-Length must be a non-negative integer"})
        if length > MAX_BODY:
            return self._json(413, {"error": "request too large"})
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise SessionError("the request body must be a JSON object")
            self._json(200, studio.run(body))
        except Cancelled as err:
            self._json(HTTPStatus.CONFLICT, {"error": str(err), "state": studio.state()})
        except (SessionError, ValueError, KeyError, TypeError) as err:
            self._json(400, {"error": str(err), "state": studio.state()})


def make_server(session: Session, host: str = "127.0.0.1", port: int = 7860) -> ThreadingHTTPServer:
    """A :class:`ThreadingHTTPServer` serving ``session`` (port 0: a free port; see ``server_address``)."""
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.studio = Studio(session)
    return server


def serve_in_thread(session: Session, host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start a server on a background thread; returns ``(server, base_url)`` (call ``server.shutdown()``)."""
    server = make_server(session, host, port)
    threading.Thread(target=server.serve_forever, daemon=True, name="gan-writer-studio").start()
    h, p = server.server_address[:2]
    return server, f"http://{h}:{p}"
