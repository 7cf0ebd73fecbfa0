"""What a co-writing session file holds (:class:`gan_writer.cowrite.session.Session`), and the
checks a loaded one must pass before anything uses it: a file that fails them is refused
with what is wrong, and never written. Session files are data: only ``json`` reads them.
"""
from __future__ import annotations

from gan_writer.writing.forms import get_form
from gan_writer.writing.script import check_characters, check_logline

__all__ = ["FORMAT", "FIELDS", "KINDS", "AUTHORS", "SessionError", "empty_state", "check_cast", "saved_cast", "validate"]

FORMAT = "gan_writer.cowrite.session/1"
#: a session file's own top-level keys (:meth:`~gan_writer.cowrite.session.Session.to_dict`)
FIELDS = ("format", "kind", "form", "seed", "title", "logline", "characters", "states", "pos", "log")
KINDS = ("poem", "story", "script")
AUTHORS = ("writer", "model")


class SessionError(ValueError):
    """A session file that cannot be used, or an operation that does not fit the session's state."""


def empty_state(temperature: float = 1.0) -> dict:
    """The state of a new document (JSON-able)."""
    return {"spans": [], "candidates": [], "target": None, "steer": [], "ban": [], "branch": None,
            "temperature": temperature}


def check_cast(kind: str, logline, characters, keys: tuple[str, str] = ("--logline", "--characters"),
               ) -> tuple[str, list[tuple[str, str]]]:
    """``(logline, [(name, description), ...])`` checked for a session of ``kind``; ``keys``
    name the two in messages (the options, or a file's keys).

    Raises:
        SessionError: a logline that is not one line of text
            (:func:`~gan_writer.writing.script.check_logline`), a bad cast (a list of
            ``[name, description]`` pairs, :func:`check_characters`), or either given for a
            poem or story.
    """
    if not isinstance(logline, str):
        raise SessionError(f"{keys[0]} {logline!r} is not a string")
    if not isinstance(characters, (list, tuple)) or not all(isinstance(c, (list, tuple)) and len(c) == 2
                                                            for c in characters):
        raise SessionError(f"{keys[1]} is not a cast: give a list of [name, description] pairs")
    cast = [(name, desc) for name, desc in characters]
    try:
        check_logline(logline, keys[0])
        check_characters(cast, keys[1])
    except ValueError as err:
        raise SessionError(str(err)) from None
    if (logline.strip() or cast) and kind != "script":
        raise SessionError(f"{' and '.join(keys)} are for script sessions; this is a {kind} session")
    return logline.strip(), cast


def saved_cast(data: dict) -> tuple:
    """A loaded session's ``(logline, characters)`` as saved (absent or null: none)."""
    logline, characters = data.get("logline"), data.get("characters")
    return ("" if logline is None else logline), ([] if characters is None else characters)


def state_problem(st: dict) -> str | None:
    """What is wrong with the types of one saved state's fields, or None."""
    for key in ("steer", "ban"):
        if not isinstance(st[key], list) or not all(isinstance(w, str) for w in st[key]):
            return f"{key!r} is not a list of strings"
    if not isinstance(st["candidates"], list) or not all(
            isinstance(c, dict) and isinstance(c.get("text"), str) for c in st["candidates"]):
        return "'candidates' is not a list of {text, ...}"
    t = st["temperature"]
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not (t > 0 and t != float("inf")):
        return f"temperature {t!r} is not a finite number > 0"
    target = st["target"]
    if target is not None and not (isinstance(target, list) and len(target) == 2
                                   and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in target)):
        return f"target {target!r} is not null or [a, b]"
    br = st["branch"]
    if br is not None and not (isinstance(br, dict) and isinstance(br.get("fork"), int) and isinstance(br.get("active"), int)
                               and isinstance(br.get("siblings"), list)
                               and all(isinstance(x, list) for x in br["siblings"])
                               and 0 <= br["active"] < max(len(br["siblings"]), 1)):
        return "'branch' is not null or {fork, siblings, active}"
    return None


def validate(data) -> str | None:
    """What is wrong with a loaded session dict, or None."""
    if not isinstance(data, dict):
        return "the top level is not an object"
    if data.get("format") != FORMAT:
        return f"format is {data.get('format')!r}, expected {FORMAT!r}"
    for key, typ in (("kind", str), ("seed", int), ("states", list), ("pos", int), ("log", list)):
        if not isinstance(data.get(key), typ):
            return f"key {key!r} is missing or not a {typ.__name__}"
    if data["kind"] not in KINDS:
        return f"kind {data['kind']!r} is not one of {', '.join(KINDS)}"
    for key in ("title", "logline"):
        if data.get(key) is not None and not isinstance(data[key], str):
            return f"key {key!r} is {data[key]!r}, not a string"
    try:
        check_cast(data["kind"], *saved_cast(data), ("key 'logline'", "key 'characters'"))
    except SessionError as err:
        return str(err)
    if data.get("form") is not None and not isinstance(data["form"], str):
        return "key 'form' is not a string"
    if data.get("form") is not None and data["kind"] != "poem":
        return f"form {data['form']!r} is for poem sessions; this is a {data['kind']} session (set \"form\": null)"
    if data.get("form") is not None:
        try:
            get_form(data["form"])
        except ValueError:
            return f"form {data['form']!r} is not a known form"
    if isinstance(data["seed"], bool) or not -2**62 < data["seed"] < 2**62:
        return f"seed {data['seed']!r} is not an integer of at most 62 bits"
    if not data["states"] or not 0 <= data["pos"] < len(data["states"]):
        return f"pos {data['pos']} is outside the {len(data['states'])} saved states"
    for n, st in enumerate(data["states"]):
        if not isinstance(st, dict) or not isinstance(st.get("spans"), list) or set(empty_state()) - set(st):
            return f"state {n} lacks keys {sorted(set(empty_state()) - set(st if isinstance(st, dict) else {}))}"
        problem = state_problem(st)
        if problem:
            return f"state {n}: {problem}"
        for s in st["spans"]:
            if not isinstance(s, dict) or not isinstance(s.get("text"), str) or s.get("author") not in AUTHORS:
                return f"state {n} has a span that is not {{text, author: writer|model}}"
    for rec in data["log"]:
        if not isinstance(rec, dict) or not isinstance(rec.get("op"), str):
            return "a log record has no 'op'"
    return None
