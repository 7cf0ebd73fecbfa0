"""A co-writing session: a document written by a writer and a model together, every step recorded.

The document is a list of *spans* (a poem's lines, a story's passages, a script's lines),
each ``{"text", "author": "writer" | "model", "seed", "op"}``. Operations:

* :meth:`Session.write` — the writer's own text, appended;
* :meth:`Session.alternatives` — ``k`` ranked candidates for the next piece (as ``gan-writer
  write`` ranks: form, keywords, fluency; safety reports beside each), :meth:`Session.choose`
  keeps one; :meth:`Session.continue_` keeps the best at once;
* :meth:`Session.rewrite` — candidates replacing spans ``a:b`` (keywords steer them; the text
  after them is scored too); :meth:`Session.infill` — candidates inserted at a position;
* :meth:`Session.steer` / :meth:`Session.ban` — keywords with a logit bias / words never drawn
  in every later generation (:mod:`gan_writer.cowrite.decoding`);
* :meth:`Session.branch` — ``n`` alternative endings kept as siblings; :meth:`Session.switch`;
* :meth:`Session.undo` / :meth:`Session.redo`; :meth:`Session.export` (text, Markdown,
  Fountain for scripts, JSON).

Every operation appends a record ``{"op", "args", "seed"}`` to :attr:`Session.log` (model
steps carry the seed they drew with), so :meth:`Session.replay` rebuilds the same session
with the same generator. With a ``path`` the session is saved as JSON after every
operation, atomically (a temporary file in the same folder, then ``os.replace``), so a
crash or Ctrl-C loses at most the operation under way. :meth:`Session.open` restores one;
a file that is not a valid session is refused (:class:`SessionError`) and never written.
Session files are data: only ``json`` reads them.
"""
from __future__ import annotations

import copy
import json
import os
import unicodedata
from pathlib import Path

from gan_writer.cowrite.export import export_document
from gan_writer.cowrite.generator import MAX_CANDIDATES, CandidateGenerator, Request, lines_of
from gan_writer.cowrite.session_file import FIELDS, FORMAT, KINDS, SessionError, check_cast, empty_state, saved_cast, validate
from gan_writer.writing.forms import LINE_END, get_form
from gan_writer.writing.script import cast_header

#: a passage starting with one of these follows the previous one without a space
_NO_SPACE_BEFORE = set(",.;:!?)]}'\"’”…%、，。；：！？）】》」』")


def _wide(ch: str) -> bool:
    """CJK and other East Asian wide characters, which are written without spaces between words."""
    return unicodedata.east_asian_width(ch) in ("W", "F")


def join_passages(passages: list[str]) -> str:
    """A story's passages as one text. Consecutive passages are joined with one space, except
    where either side already has whitespace at the seam, the next passage opens with closing
    punctuation (``,`` ``.`` ``”`` ``。`` ...), or the seam touches a CJK character (no spaces in
    Chinese or Japanese text). A subword tokenizer's passages carry their own leading space; a
    word-level one's do not, and were glued together (``night`` + ``concealed``) before."""
    out = ""
    for text in passages:
        if out and text and not (out[-1].isspace() or text[0].isspace() or text[0] in _NO_SPACE_BEFORE
                                 or _wide(out[-1]) or _wide(text[0])):
            out += " "
        out += text
    return out


class Session:
    """See the module docstring.

    Args:
        generator: a :class:`~gan_writer.cowrite.generator.CandidateGenerator`.
        kind: ``poem`` | ``story`` | ``script``; form: a form name for poems (e.g. ``wujue``) or None.
        path: JSON file saved after every operation (must not exist yet: use :meth:`open`).
        seed: base seed; the model step number ``j`` draws with ``seed + j``.
        temperature: sampling temperature; title: shown in exports.
        logline, characters: a script's plot in one sentence and its cast ``[(NAME,
            description), ...]``: both go into every prompt above the document, never into
            it, and with a cast every model line is ``NAME: speech`` by a listed character
            (see :class:`~gan_writer.cowrite.generator.Request`); the Fountain export puts
            them on its title page.

    Raises:
        SessionError: unknown kind or form, a bad cast, a logline or cast for a poem or
            story, or ``path`` already exists.
    """

    def __init__(self, generator: CandidateGenerator, kind: str = "poem", form: str | None = None,
                 path: str | Path | None = None, seed: int = 0, temperature: float = 1.0, title: str = "",
                 logline: str = "", characters=()) -> None:
        if kind not in KINDS:
            raise SessionError(f"kind {kind!r}: choose one of {', '.join(KINDS)}")
        self.logline, self.characters = check_cast(kind, logline, list(characters))
        if form is not None:
            if kind != "poem":
                raise SessionError(f"--form is for poem sessions; this is a {kind} session (drop --form)")
            try:
                get_form(form)
            except ValueError as err:
                raise SessionError(str(err)) from err
        self.generator, self.kind, self.form, self.seed, self.title = generator, kind, form, seed, title
        self.path = Path(path) if path is not None else None
        if self.path is not None and self.path.exists():
            raise SessionError(f"{self.path} already exists; open it (Session.open / --session) instead of overwriting it")
        self.states = [empty_state(temperature)]
        self.pos = 0
        self.extra: dict = {}  # a file's top-level keys that are not the session's (kept on save)
        self.log: list[dict] = []
        self.save()

    # ---- document -----------------------------------------------------------------
    @property
    def state(self) -> dict:
        """The current state (do not modify it; operations copy it)."""
        return self.states[self.pos]

    @property
    def spans(self) -> list[dict]:
        return self.state["spans"]

    @property
    def candidates(self) -> list[dict]:
        return self.state["candidates"]

    @property
    def zh(self) -> bool:
        return bool(self.form) and get_form(self.form)[0].language == "zh"

    def join(self, spans: list[dict]) -> str:
        """The text of ``spans``: lines joined by ``\\n`` (poems, scripts), passages by
        :func:`join_passages` (stories)."""
        if self.kind == "story":
            return join_passages([s["text"] for s in spans])
        return "\n".join(s["text"] for s in spans)

    @property
    def text(self) -> str:
        """The document's text."""
        return self.join(self.spans)

    @property
    def header(self) -> str:
        """The prompt's head above the document: a script's title, logline and cast
        (:func:`~gan_writer.writing.script.cast_header`); empty without a logline or cast."""
        if not (self.logline or self.characters):
            return ""
        return cast_header(self.title, self.logline, self.characters)

    # ---- recording ------------------------------------------------------------------
    def _next_seed(self) -> int:
        return self.seed + len(self.log)

    def _commit(self, new: dict, op: str, args: dict, seed: int | None = None) -> dict:
        self.states = self.states[: self.pos + 1] + [new]
        self.pos += 1
        self.log.append({"op": op, "args": args, "seed": seed})
        self.save()
        return new

    def _copy(self) -> dict:
        new = copy.deepcopy(self.state)
        new["candidates"], new["target"] = [], None
        return new

    def _request(self, prefix: list[dict], suffix: list[dict], units, k: int, seed: int, keywords=(), diverse=False,
                 progress=None, cancel=None) -> list[dict]:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_CANDIDATES:
            raise SessionError(f"ask for 1 to {MAX_CANDIDATES} candidates, got {k!r}")
        st = self.state
        req = Request(self.kind, self.form, self.join(prefix), units, self.join(suffix), k, seed, st["temperature"],
                      tuple(st["steer"]) + tuple(keywords), tuple(st["ban"]), diverse, progress, cancel,
                      self.header, tuple(n for n, _ in self.characters))
        cands = self.generator.propose(req)
        return [{**c, "seed": seed} for c in cands]

    def _pieces(self, text: str, author: str, seed: int | None, op: str, start: int) -> list[dict]:
        """Spans for ``text``: one per line for poems and scripts (Chinese poem lines get their mark)."""
        if self.kind == "story":
            return [{"text": text, "author": author, "seed": seed, "op": op}]
        parts = lines_of(text, True) if self.zh else [ln for ln in text.split("\n") if ln.strip()]
        out = []
        for j, line in enumerate(parts):
            if self.zh and line and line[-1] not in LINE_END:
                line += LINE_END[(start + j) % 2]
            out.append({"text": line, "author": author, "seed": seed, "op": op})
        return out

    # ---- operations -------------------------------------------------------------------
    def write(self, text: str) -> dict:
        """Append the writer's own ``text``.

        Raises:
            SessionError: if ``text`` is empty.
        """
        if not text.strip():
            raise SessionError("nothing to write: the text is empty")
        new = self._copy()
        if self.kind == "story" and new["spans"] and not self.zh and text[:1].isalnum() and not self.text[-1:].isspace():
            text = " " + text
        new["spans"] += self._pieces(text, "writer", None, "write", len(new["spans"]))
        return self._commit(new, "write", {"text": text})

    def alternatives(self, k: int = 3, units: int | None = 1, seed: int | None = None, progress=None, cancel=None) -> list[dict]:
        """Ask for ``k`` ranked candidates for the next ``units`` lines / passages (None: to the end)."""
        seed = self._next_seed() if seed is None else seed
        cands = self._request(self.spans, [], units, k, seed, progress=progress, cancel=cancel)
        new = self._copy()
        new["candidates"] = cands
        self._commit(new, "alternatives", {"k": k, "units": units}, seed)
        return cands

    def choose(self, i: int) -> dict:
        """Keep candidate ``i`` (0-based): appended, or in place of the span range it rewrites.

        Raises:
            SessionError: no candidates, or ``i`` out of range.
        """
        cands = self.candidates
        if not cands:
            raise SessionError("there are no candidates to choose from; ask for alternatives first")
        if not 0 <= i < len(cands):
            raise SessionError(f"candidate {i + 1} does not exist; choose 1 to {len(cands)}")
        c, target = cands[i], self.state["target"]
        new = self._copy()
        a, b = target if target is not None else (len(new["spans"]),) * 2
        new["spans"][a:b] = self._pieces(c["text"], "model", c["seed"], "choose", a)
        return self._commit(new, "choose", {"i": i})

    def continue_(self, units: int | None = 1, seed: int | None = None, progress=None, cancel=None) -> dict:
        """Append the best candidate for the next ``units`` lines / passages at once."""
        seed = self._next_seed() if seed is None else seed
        (best, *_) = self._request(self.spans, [], units, 1, seed, progress=progress, cancel=cancel)
        new = self._copy()
        new["spans"] += self._pieces(best["text"], "model", seed, "continue", len(new["spans"]))
        return self._commit(new, "continue", {"units": units}, seed)

    def _check_range(self, a: int, b: int) -> None:
        if not 0 <= a <= b <= len(self.spans):
            raise SessionError(f"span range {a + 1}-{b} is outside the document's {len(self.spans)} spans")

    def rewrite(self, a: int, b: int, keywords=(), k: int = 3, seed: int | None = None, progress=None, cancel=None) -> list[dict]:
        """Candidates to replace spans ``a:b`` (0-based, end exclusive), steered by ``keywords``; choose one."""
        self._check_range(a, b)
        if a == b:
            raise SessionError("rewrite needs at least one span; use infill to insert")
        seed = self._next_seed() if seed is None else seed
        cands = self._request(self.spans[:a], self.spans[b:], b - a, k, seed, keywords, progress=progress, cancel=cancel)
        new = self._copy()
        new["candidates"], new["target"] = cands, [a, b]
        self._commit(new, "rewrite", {"a": a, "b": b, "keywords": list(keywords), "k": k}, seed)
        return cands

    def infill(self, at: int, k: int = 3, units: int = 1, seed: int | None = None, progress=None, cancel=None) -> list[dict]:
        """Candidates to insert before span ``at`` (ranked with the text after them); choose one."""
        if not 0 <= at <= len(self.spans):
            n = len(self.spans)
            raise SessionError(f"cannot insert before span {at + 1}: choose 1 to {n + 1} (the document has "
                               f"{n} span{'' if n == 1 else 's'}; {n + 1} adds at the end)")
        seed = self._next_seed() if seed is None else seed
        cands = self._request(self.spans[:at], self.spans[at:], units, k, seed, progress=progress, cancel=cancel)
        new = self._copy()
        new["candidates"], new["target"] = cands, [at, at]
        self._commit(new, "infill", {"at": at, "k": k, "units": units}, seed)
        return cands

    def _check_known(self, words, what: str) -> None:
        """Refuse words the model's vocabulary cannot write (when the generator can tell)."""
        unknown = getattr(self.generator, "unknown_words", lambda ws: [])([w for w in words if w.strip()])
        if unknown:
            raise SessionError(f"{what}: the model's vocabulary has no {', '.join(map(repr, unknown))}, so it "
                               "never writes it; check the spelling or choose another word")

    def steer(self, keywords) -> dict:
        """Steer every later generation towards ``keywords`` (logit bias; an empty list clears it).

        Raises:
            SessionError: a keyword outside the model's vocabulary, or one that is banned.
        """
        self._check_known(keywords, ":steer")
        banned = [w for w in keywords if w.strip() and w in self.state["ban"]]
        if banned:
            raise SessionError(f":steer: {', '.join(map(repr, banned))} is banned (:ban); `:ban` with no words "
                               "clears the banned list")
        new = self._copy()
        new["steer"] = [w for w in keywords if w.strip()]
        return self._commit(new, "steer", {"keywords": list(keywords)})

    def ban(self, words) -> dict:
        """Never draw ``words`` again (added to the banned list; an empty list clears it).

        Raises:
            SessionError: a word outside the model's vocabulary (it is never drawn anyway).
        """
        self._check_known(words, ":ban")
        new = self._copy()
        new["ban"] = sorted(set(new["ban"]) | {w for w in words if w.strip()}) if words else []
        return self._commit(new, "ban", {"words": list(words)})

    def set_temperature(self, temperature: float) -> dict:
        """Sampling temperature of later generations (> 0)."""
        if not 0 < temperature < float("inf"):
            raise SessionError(f"temperature must be a finite number > 0, got {temperature}")
        new = self._copy()
        new["temperature"] = float(temperature)
        return self._commit(new, "temperature", {"temperature": float(temperature)})

    def branch(self, n: int = 3, seed: int | None = None, progress=None, cancel=None) -> dict:
        """``n`` different endings from here, kept as siblings; the first becomes the document's."""
        seed = self._next_seed() if seed is None else seed
        cands = self._request(self.spans, [], None, n, seed, diverse=True, progress=progress, cancel=cancel)
        new = self._copy()
        fork = len(new["spans"])
        sibs = [self._pieces(c["text"], "model", seed, "branch", fork) for c in cands]
        new["branch"] = {"fork": fork, "siblings": sibs, "active": 0,
                         "reports": [{"report": c["report"], "score": c["score"]} for c in cands]}
        new["spans"] += sibs[0]
        return self._commit(new, "branch", {"n": n}, seed)

    def switch(self, j: int) -> dict:
        """Make sibling ending ``j`` (0-based) the document's; the current ending is kept as its sibling.

        Raises:
            SessionError: no branch, ``j`` out of range, or the branch point was rewritten away.
        """
        br = self.state["branch"]
        if br is None:
            raise SessionError("there are no alternative endings; ask for endings first")
        if not 0 <= j < len(br["siblings"]):
            raise SessionError(f"ending {j + 1} does not exist; choose 1 to {len(br['siblings'])}")
        if len(self.spans) < br["fork"]:
            raise SessionError("the text before the endings was shortened; the endings no longer attach")
        new = self._copy()
        b = new["branch"]
        b["siblings"][b["active"]] = new["spans"][b["fork"]:]
        new["spans"] = new["spans"][: b["fork"]] + b["siblings"][j]
        b["active"] = j
        return self._commit(new, "switch", {"j": j})

    def undo(self) -> dict:
        """Go back one operation. Raises SessionError when there is nothing to undo."""
        if self.pos == 0:
            raise SessionError("nothing to undo")
        self.pos -= 1
        self.log.append({"op": "undo", "args": {}, "seed": None})
        self.save()
        return self.state

    def redo(self) -> dict:
        """Redo the operation last undone. Raises SessionError when there is none."""
        if self.pos + 1 >= len(self.states):
            raise SessionError("nothing to redo")
        self.pos += 1
        self.log.append({"op": "redo", "args": {}, "seed": None})
        self.save()
        return self.state

    # ---- replay, export, files -------------------------------------------------------------
    def apply(self, record: dict):
        """Apply one :attr:`log` record (its recorded seed for model steps)."""
        op, args, seed = record["op"], dict(record.get("args") or {}), record.get("seed")
        if seed is not None:
            args["seed"] = seed
        fn = {"write": self.write, "alternatives": self.alternatives, "choose": self.choose, "continue": self.continue_,
              "rewrite": self.rewrite, "infill": self.infill, "steer": self.steer, "ban": self.ban,
              "temperature": self.set_temperature, "branch": self.branch, "switch": self.switch,
              "undo": self.undo, "redo": self.redo}.get(op)
        if fn is None:
            raise SessionError(f"unknown operation {op!r} in the session log")
        return fn(**args)

    def replay(self, generator: CandidateGenerator | None = None, path: str | Path | None = None) -> "Session":
        """A new session built by applying this one's :attr:`log` again (same seeds, same generator)."""
        new = Session(generator or self.generator, self.kind, self.form, path, self.seed, self.states[0]["temperature"],
                      self.title, self.logline, self.characters)
        for rec in self.log:
            new.apply(rec)
        return new

    def export(self, fmt: str = "text") -> str:
        """The document as ``text`` | ``markdown`` | ``fountain`` (scripts) | ``json`` (see :mod:`gan_writer.cowrite.export`)."""
        return export_document(self, fmt)

    def to_dict(self) -> dict:
        """The whole session (JSON-able): format tag, settings, the undo stack and the log, and
        any other top-level keys of the file it was opened from, as they were."""
        return {**self.extra, "format": FORMAT, "kind": self.kind, "form": self.form, "seed": self.seed,
                "title": self.title, "logline": self.logline, "characters": [list(c) for c in self.characters],
                "states": self.states, "pos": self.pos, "log": self.log}

    def save(self) -> None:
        """Write :meth:`to_dict` to :attr:`path` atomically (no-op without a path)."""
        if self.path is None:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(self.to_dict(), f, ensure_ascii=False, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # the previous save stays whole
            raise

    @classmethod
    def open(cls, path: str | Path, generator: CandidateGenerator) -> "Session":
        """Restore the session saved in ``path``; later operations save to it again.

        Raises:
            SessionError: the file is missing, not JSON, or not a gan-writer session (it is
                left untouched).
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise SessionError(f"{path}: no such session file") from err
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
            why = "nested too deeply" if isinstance(err, RecursionError) else err
            raise SessionError(f"{path}: not a gan-writer session (invalid JSON: {why}); the file was left as it is") from None
        except OSError as err:
            raise SessionError(f"{path}: cannot read the session file ({err.strerror or err})") from None
        problem = validate(data)
        if problem:
            raise SessionError(f"{path}: not a gan-writer session ({problem}); the file was left as it is")
        self = cls.__new__(cls)
        self.generator, self.kind, self.form, self.seed = generator, data["kind"], data["form"], int(data["seed"])
        self.title, self.path = data.get("title") or "", path
        self.logline, self.characters = check_cast(data["kind"], *saved_cast(data))
        self.states, self.pos, self.log = data["states"], int(data["pos"]), data["log"]
        self.extra = {k: v for k, v in data.items() if k not in FIELDS}  # kept: not ours to drop
        return self

    @classmethod
    def open_or_create(cls, path: str | Path, generator: CandidateGenerator, **kwargs) -> "Session":
        """:meth:`open` ``path`` if it exists, else a new session saved there."""
        return cls.open(path, generator) if Path(path).exists() else cls(generator, path=path, **kwargs)
