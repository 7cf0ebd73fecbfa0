"""The co-writing loop in a terminal (``gan-writer cowrite``), scriptable through standard input.

One command a line; anything not starting with ``:`` is the writer's own text, appended.
Span numbers are 1-based as shown by ``:show``. Errors are printed and the loop goes on.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from gan_writer.cowrite.decoding import Cancelled
from gan_writer.cowrite.export import format_for
from gan_writer.cowrite.session import Session, SessionError
from gan_writer.writing.readable import readable_in

HELP = """commands (anything else is your own text, appended):
  :more N            N alternatives for the next line / passage      :pick I     keep alternative I
  :next              the model writes the next line / passage        :show       the document (and cast)
  :rewrite A-B [kw]  alternatives for spans A..B, steered by kw      :infill A   insert before span A
  :ending N          N alternative endings (kept as siblings)        :branch J   switch to ending J
  :steer w1,w2       steer later drafts to these words               :ban w1,w2  never draw these words
  :temp T            sampling temperature                            :undo  :redo
  :save              write the session file                          :export FILE (.txt .md .fountain .json)
  :help              this text                                       :quit"""


def words(arg: str) -> list[str]:
    """Comma- or space-separated words."""
    return [w for w in arg.replace("，", ",").replace(",", " ").split() if w]


def show_document(s: Session) -> str:
    """The document, one numbered span a line, ``*`` marking the model's."""
    if not s.spans:
        return "(empty document)"
    return "\n".join(f"{i + 1:>3}{'*' if sp['author'] == 'model' else ' '} {readable_in(s, sp['text']).strip()}"
                     for i, sp in enumerate(s.spans))


def show_cast(s: Session) -> str:
    """A script session's logline and cast, one line each (empty without them)."""
    out = [f"logline: {s.logline}"] if s.logline else []
    if s.characters:
        out.append("cast: " + "; ".join(f"{n} ({d})" if d else n for n, d in s.characters))
    return "\n".join(out)


def show_candidates(cands: list[dict], s: Session | None = None) -> str:
    """Numbered candidates with score, form and safety reports (as ``s``'s writer reads them)."""
    out = []
    for i, c in enumerate(cands):
        rep = c["report"]
        notes = []
        form = rep.get("form")
        if form is not None:
            if "tone_score" in form:
                notes.append(f"平仄 {form['tone_score']:.2f}" + (f", rhyme {'ok' if form['rhyme_ok'] else 'no'}" if form.get("complete") else ""))
            elif form.get("syllable_err") is not None:
                notes.append(f"syllable error {form['syllable_err']:.2f}")
        spans = rep.get("safety", {}).get("spans") or []
        notes.append("safety: flagged " + ", ".join(repr(x["text"]) for x in spans) if spans else "safety: ok")
        text = (readable_in(s, c["text"]) if s is not None else c["text"]).replace("\n", " / ")
        out.append(f"  [{i + 1}] {text}   (score {c['score']:.3f}; {'; '.join(notes)})")
    return "\n".join(out)


def _range(arg: str) -> tuple[int, int]:
    a, _, b = arg.partition("-")
    try:
        lo, hi = int(a), int(b or a)
    except ValueError:
        raise SessionError(f"span range {arg!r}: write A-B with span numbers, e.g. 2-3") from None
    return lo - 1, hi


def _int(arg: str, default: int | None = None) -> int:
    try:
        return int(arg) if arg else int(default)
    except (TypeError, ValueError):
        raise SessionError(f"expected a number, got {arg!r}") from None


def _export(s: Session, arg: str) -> str:
    if not arg:
        raise SessionError(":export needs a file name, e.g. :export poem.md")
    path = Path(arg).expanduser()
    if path.exists():
        raise SessionError(f"{path} exists; choose another name (exports never overwrite)")
    text = s.export(format_for(path.name))
    try:
        with open(path, "x", encoding="utf-8") as f:  # "x": never overwrite, even a file made meanwhile
            f.write(text)
    except FileExistsError:
        raise SessionError(f"{path} exists; choose another name (exports never overwrite)") from None
    except OSError as err:
        raise SessionError(f"cannot export to {path}: {err.strerror or err}") from None
    return f"exported to {path}"


def handle(s: Session, line: str) -> str | None:
    """Run one input line on ``s``; the text to print, or None to quit."""
    if not line.startswith(":"):
        s.write(line)
        return show_document(s)
    cmd, _, arg = line[1:].partition(" ")
    arg = arg.strip()
    if cmd in ("quit", "q"):
        return None
    if cmd == "more":
        return show_candidates(s.alternatives(_int(arg, 3)), s)
    if cmd == "pick":
        s.choose(_int(arg) - 1)
        return show_document(s)
    if cmd == "next":
        s.continue_()
        return show_document(s)
    if cmd == "rewrite":
        rng, _, kw = arg.partition(" ")
        a, b = _range(rng)
        return show_candidates(s.rewrite(a, b, words(kw)), s)
    if cmd == "infill":
        return show_candidates(s.infill(_int(arg) - 1), s)
    if cmd == "ending":
        s.branch(_int(arg, 3))
        sibs = s.state["branch"]["siblings"]
        return "\n".join(f"  ending {j + 1}: " + " / ".join(x["text"].strip() for x in sib) for j, sib in enumerate(sibs)) \
            + "\n(ending 1 is in the document; :branch J switches)\n" + show_document(s)
    if cmd == "branch":
        s.switch(_int(arg) - 1)
        return show_document(s)
    if cmd == "steer":
        s.steer(words(arg))
        return f"steering towards: {', '.join(s.state['steer']) or '(nothing)'}"
    if cmd == "ban":
        s.ban(words(arg))
        return f"banned: {', '.join(s.state['ban']) or '(nothing)'}"
    if cmd == "temp":
        try:
            value = float(arg)
        except ValueError:
            raise SessionError(f":temp needs a number > 0, e.g. :temp 0.8; got {arg.strip()!r}") from None
        s.set_temperature(value)
        return f"temperature {s.state['temperature']}"
    if cmd in ("undo", "redo"):
        getattr(s, cmd)()
        return show_document(s)
    if cmd == "save":
        if s.path is None:
            return "no session file: start with --session FILE to keep the session"
        s.save()
        return f"saved {s.path}"
    if cmd == "export":
        return _export(s, arg)
    if cmd == "show":
        return "\n".join(x for x in (show_cast(s), show_document(s)) if x)
    if cmd == "help":
        return HELP
    raise SessionError(f"unknown command :{cmd}; :help lists them")


def loop(s: Session, stdin: TextIO, stdout: TextIO, prompt: bool = False, stderr: TextIO | None = None) -> int:
    """Read commands from ``stdin`` until ``:quit`` or end of input.

    Interactively (``prompt``) a failed command's error is printed where the writer reads and
    the session goes on. From a script (no ``prompt``) the script goes on too, but each error is
    written to ``stderr`` (default ``sys.stderr``) as ``line N: error: ...``, so that a failing
    script can be told from one that worked.

    Returns:
        The exit status: 0, or 2 when a scripted command failed.
    """
    stderr = sys.stderr if stderr is None else stderr
    print(HELP if prompt else "gan-writer cowrite: :help lists the commands", file=stdout)
    if show_cast(s):
        print(show_cast(s), file=stdout)
    print(show_document(s), file=stdout)
    number, failed = 0, False
    while True:
        if prompt:
            print("> ", end="", file=stdout, flush=True)
        try:
            line = stdin.readline()
        except KeyboardInterrupt:
            print("\n(stopped; the session file holds every operation so far)", file=stdout)
            return 0
        if not line:
            return 2 if failed else 0
        number += 1
        line = line.rstrip("\n").strip()
        if not line:
            continue
        error = None
        try:
            out = handle(s, line)
        except (SessionError, ValueError) as err:
            out = error = f"error: {err}"
        except OSError as err:  # e.g. the session file's disk is full: keep the loop, say so
            out = error = f"error: {err.strerror or err} ({getattr(err, 'filename', '') or 'file'})"
        except (Cancelled, KeyboardInterrupt):
            out = "cancelled (the session is as it was)"
        if out is None:
            return 2 if failed else 0
        if error is not None and not prompt:
            failed = True
            print(f"gan-writer cowrite: line {number}: {error}", file=stderr, flush=True)
            continue
        print(out, file=stdout, flush=True)
