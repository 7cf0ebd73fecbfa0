"""A small client of the studio's JSON API (standard library ``urllib``), for scripts and tests."""
from __future__ import annotations

import json
import urllib.error
import urllib.request


class StudioError(RuntimeError):
    """An API call answered with an error; ``status`` is the HTTP status, ``state`` the session's."""

    def __init__(self, status: int, message: str, state: dict | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.state = status, state


class StudioClient:
    """Calls a studio server at ``base_url`` (e.g. ``http://127.0.0.1:7860``)."""

    def __init__(self, base_url: str, timeout: float = 120.0) -> None:
        self.base, self.timeout = base_url.rstrip("/"), timeout

    def _call(self, path: str, body: dict | None = None, raw: bool = False):
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.base + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                payload = resp.read().decode("utf-8")
        except urllib.error.HTTPError as err:
            info = json.loads(err.read().decode("utf-8") or "{}")
            raise StudioError(err.code, info.get("error", ""), info.get("state")) from None
        return payload if raw else json.loads(payload)

    def state(self) -> dict:
        return self._call("/api/state")

    def op(self, name: str, **args) -> dict:
        """Run one operation (``write``, ``alternatives``, ``choose``, ...); returns the new state."""
        return self._call("/api/op", {"op": name, **args})

    def progress(self) -> dict:
        return self._call("/api/progress")

    def cancel(self) -> dict:
        return self._call("/api/cancel", {})

    def export(self, fmt: str = "text") -> str:
        return self._call(f"/api/export?fmt={fmt}", raw=True)

    def page(self) -> str:
        return self._call("/", raw=True)
