"""Exports of a co-writing session's document: plain text, Markdown, Fountain (scripts), JSON.

Fountain (https://fountain.io/syntax): a script line ``NAME: speech`` becomes a character
cue and its dialogue (non-Latin names get Fountain's ``@`` forcing mark); other lines are
action. The JSON export is the whole session (:meth:`Session.to_dict`) plus the document's
``text`` and its ``spans`` with their authors.
"""
from __future__ import annotations

import json
import re

from gan_writer.writing.readable import readable_in

FORMATS = ("text", "markdown", "fountain", "json")
EXTENSIONS = {".txt": "text", ".md": "markdown", ".fountain": "fountain", ".json": "json"}


def format_for(filename: str) -> str:
    """The export format for a file name by its extension (``.txt``, ``.md``, ``.fountain``, ``.json``).

    Raises:
        ValueError: for another extension.
    """
    for ext, fmt in EXTENSIONS.items():
        if filename.lower().endswith(ext):
            return fmt
    raise ValueError(f"{filename}: cannot tell the export format; end the name with {', '.join(EXTENSIONS)}")


def _cue(name: str) -> str:
    return name.upper() if re.fullmatch(r"[A-Za-z][A-Za-z .'-]*", name) else "@" + name


def _is_name(text: str) -> bool:
    """Whether the text before a ``:`` can be a speaker: one to three words of letters (``ANNA``,
    ``OLD MARY``, ``李白``), at most 30 characters; a passage that merely holds a colon
    (``the are as said ‘ hair: ...``) stays action."""
    words = text.split()
    return 0 < len(words) <= 3 and len(text) <= 30 and all(re.fullmatch(r"[^\W\d_][\w.'-]*", w) for w in words)


def fountain(lines: list[str], title: str = "", logline: str = "", characters=()) -> str:
    """Fountain text of script lines (see the module docstring); a ``logline`` goes on the
    title page as its ``Notes``, the ``characters`` ``[(NAME, description), ...]`` into a
    note after it, and a line spoken by one of them is a cue whatever the name's length."""
    out = [f"Title: {title or 'Untitled'}", "Credit: written with gan-writer"]
    out += [f"Notes: {logline}"] if logline else []
    out += [""]
    if characters:
        cast = "; ".join(f"{_cue(n)} - {d}" if d else _cue(n) for n, d in characters)
        out += [f"[[Characters: {cast}]]", ""]
    names = {n.upper() for n, _ in characters}
    for line in lines:
        name, sep, speech = line.partition(":")
        if sep and speech.strip() and (name.strip().upper() in names or _is_name(name.strip())):
            out += [_cue(name.strip()), speech.strip(), ""]
        else:
            out += [line.strip(), ""]
    return "\n".join(out).rstrip() + "\n"


def export_document(session, fmt: str) -> str:
    """``session``'s document in ``fmt`` (one of :data:`FORMATS`).

    Raises:
        ValueError: unknown format, or ``fountain`` for a document that is not a script.
    """
    if fmt not in FORMATS:
        raise ValueError(f"export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "json":  # the session's own text, as the model and the writer wrote it
        return json.dumps({**session.to_dict(), "text": session.text, "spans": session.spans}, ensure_ascii=False,
                          indent=1) + "\n"
    text = readable_in(session, session.text)  # the others as a writer reads them
    if fmt == "text":
        return text + "\n"
    if fmt == "fountain":
        if session.kind != "script":
            raise ValueError(f"Fountain is for scripts; this session is a {session.kind} (export text or markdown)")
        return fountain([readable_in(session, s["text"]) for s in session.spans], session.title,
                        session.logline, session.characters)
    head = f"# {session.title}\n\n" if session.title else ""
    head += f"*{session.logline}*\n\n" if session.logline else ""
    if session.characters:
        head += "".join(f"- **{n}**{': ' + d if d else ''}\n" for n, d in session.characters) + "\n"
    if session.kind == "story":
        body = text
    else:
        body = "\n".join(readable_in(session, s["text"]) + "  " for s in session.spans)
    who = sum(s["author"] == "model" for s in session.spans)
    return f"{head}{body}\n\n*{who} of {len(session.spans)} spans written by the model (gan-writer cowrite).*\n"
