"""Exports of a co-writing session's document: plain text, Markdown, Fountain (scripts), JSON.

Fountain (https://fountain.io/syntax): a script line ``NAME: speech`` becomes a character
cue and its dialogue (names beyond ASCII letters get Fountain's ``@`` forcing mark); other
lines are action (:func:`fountain`). The JSON export is the whole session
(:meth:`Session.to_dict`) plus the document's ``text`` and its ``spans`` with their authors.
"""
from __future__ import annotations

import json

from gan_writer.writing.readable import readable_in
from gan_writer.writing.script import fountain_cast_note, fountain_cue, looks_like_cue, speaker_of

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


def fountain(lines: list[str], title: str = "", logline: str = "", characters=()) -> str:
    """Fountain text of script lines (see the module docstring); a ``logline`` goes on the
    title page as its ``Notes``, the ``characters`` ``[(NAME, description), ...]`` into a
    note after it. With a cast only a line spoken by a listed name is a cue (in the cast's
    spelling, however the writer typed it: :func:`~gan_writer.writing.script.speaker_of`),
    any other line is action; without one a line is a cue when the text before its ``:``
    looks like a name (:func:`~gan_writer.writing.script.looks_like_cue`)."""
    out = [f"Title: {title or 'Untitled'}", "Credit: written with gan-writer"]
    out += [f"Notes: {logline}"] if logline else []
    out += [""]
    if characters:
        out += [fountain_cast_note(characters), ""]
    names = [n for n, _ in characters]
    for line in lines:
        name, sep, speech = line.partition(":")
        who = speaker_of(line, names) if names else (name.strip() if sep and looks_like_cue(name.strip()) else None)
        if who is not None and speech.strip():
            out += [fountain_cue(who), speech.strip(), ""]
        else:
            out += [line.strip(), ""]
    return "\n".join(out).rstrip() + "\n"


def script_head(session) -> str:
    """A script's title, logline and cast above its text in the plain-text export (as
    ``write script --format text``); empty for other kinds or without any of them."""
    if session.kind != "script" or not (session.title or session.logline or session.characters):
        return ""
    head = [x for x in (session.title, session.logline) if x] + [""]
    if session.characters:
        head += [f"{n}: {d}" if d else f"{n}:" for n, d in session.characters] + [""]
    return "\n".join(head) + "\n"


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
        return script_head(session) + text + "\n"
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
