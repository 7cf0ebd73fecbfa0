"""The writing safety filter: a versioned word list (zh + en) and an optional classifier.

Terms come from the project's own data file ``writing/data/safety_terms.json`` (its
``version`` is reported with every result) and are matched case-insensitively with
Aho-Corasick automata (``pyahocorasick``), on the text with traditional Chinese folded to
simplified (OpenCC ``t2s``, character by character, so offsets stay those of the text).
English terms count only as whole words, each inflected form listed itself (``shits``,
``raped``: a suffix rule would flag "spices" and "heroines"; so "classic" and "Scunthorpe"
pass); a hit that lies inside an allow-listed word is
dropped (so 可靠, 操作, 大麻烦 pass). Where ``alt-profanity-check`` is installed (a linear
SVM shipped in the wheel; no download) English lines whose predicted probability reaches
``threshold`` are flagged too. Nothing here touches the network.

Modes (``--safety``): ``flag`` shows the flagged spans and changes nothing (classical verse
about war and death, 古来征战几人回, is neither flagged nor blocked); ``rerank`` pushes flagged
drafts below clean ones; ``block`` drops flagged drafts and resamples.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

from gan_writer.writing.rhyme import is_hanzi

MODES = ("flag", "rerank", "block")
TERMS_FILE = Path(__file__).with_name("data") / "safety_terms.json"


@dataclass
class SafetyResult:
    """Outcome of :meth:`SafetyFilter.check`.

    Attributes:
        spans: ``[{"start", "end", "text", "source"}]`` character offsets into the text
            (end exclusive); ``source`` is ``list`` or ``classifier``.
        version: the word list's version.
    """

    spans: list[dict] = field(default_factory=list)
    version: str = ""

    @property
    def flagged(self) -> bool:
        return bool(self.spans)

    def to_dict(self) -> dict:
        return {"flagged": self.flagged, "spans": self.spans, "list_version": self.version}


def _automaton(words):
    import ahocorasick

    a = ahocorasick.Automaton()
    for w in words:
        a.add_word(w.lower(), w.lower())
    if len(a):
        a.make_automaton()
    return a


def _is_word_char(c: str) -> bool:
    return c.isalnum() and c.isascii() or c == "'"


@functools.lru_cache(maxsize=65536)
def _fold_char(c: str) -> str:
    """One character as the lists spell it, still one character (offsets stay valid): lower
    case unless that changes its length (``İ``), traditional Chinese as simplified (``媽`` -> ``妈``)."""
    low = c.lower()
    c = low if len(low) == 1 else c
    if is_hanzi(c):
        simple = _t2s().convert(c)
        return simple if len(simple) == 1 else c
    return c


@functools.lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def _fold(text: str) -> str:
    """``text`` with :func:`_fold_char` applied to every character (same length)."""
    return "".join(_fold_char(c) for c in text)


class SafetyFilter:
    """Word-list (+ classifier) filter; see the module docstring.

    Args:
        terms_file: the JSON list (``version``, ``en``, ``zh``, ``allow``).
        classifier: use ``alt-profanity-check`` when installed (``None``: when installed).
        threshold: classifier probability at which an English line is flagged.

    Raises:
        ValueError: if ``terms_file`` is missing a key or is not valid JSON (names the file).
        ModuleNotFoundError: if ``pyahocorasick`` is not installed.
    """

    def __init__(self, terms_file: str | Path = TERMS_FILE, classifier: bool | None = None, threshold: float = 0.9):
        path = Path(terms_file)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self.version, en, zh, allow = data["version"], data["en"], data["zh"], data["allow"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a safety list with keys version, en, zh, allow ({err})") from err
        self._en, self._zh, self._allow = (_automaton([_fold(w) for w in ws]) for ws in (en, zh, allow))
        self.threshold = threshold
        self._classifier = _load_classifier() if classifier in (None, True) else None
        if classifier is True and self._classifier is None:
            raise ModuleNotFoundError("alt-profanity-check is not installed: pip install alt-profanity-check==1.9.1")

    @property
    def has_classifier(self) -> bool:
        return self._classifier is not None

    @staticmethod
    def _hits(automaton, text: str):
        if not len(automaton):
            return
        for end, word in automaton.iter(text):
            yield end - len(word) + 1, end + 1, word

    def check(self, text: str) -> SafetyResult:
        """Flagged spans of ``text`` (see :class:`SafetyResult`): offsets into ``text`` itself.
        Matching is case-insensitive and on simplified Chinese (traditional characters are
        folded, one for one)."""
        low = _fold(text)
        allowed = [(s, e) for s, e, _ in self._hits(self._allow, low)]
        spans = []
        for automaton, bounded in ((self._en, True), (self._zh, False)):
            for s, e, _ in self._hits(automaton, low):
                if bounded and ((s > 0 and _is_word_char(low[s - 1])) or (e < len(low) and _is_word_char(low[e]))):
                    continue
                if any(a <= s and e <= b for a, b in allowed):
                    continue
                spans.append({"start": s, "end": e, "text": text[s:e], "source": "list"})
        if self._classifier is not None:
            offset = 0
            for line in text.split("\n"):
                if any(c.isascii() and c.isalpha() for c in line) and self._classifier([line])[0] >= self.threshold:
                    spans.append({"start": offset, "end": offset + len(line), "text": line, "source": "classifier"})
                offset += len(line) + 1
        spans.sort(key=lambda d: (d["start"], d["end"]))
        return SafetyResult(spans, self.version)


@functools.lru_cache(maxsize=1)
def _load_classifier():
    try:
        from profanity_check import predict_prob
    except ModuleNotFoundError:
        return None
    return predict_prob


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`.

    Raises:
        ValueError: naming the valid modes.
    """
    if mode not in MODES:
        raise ValueError(f"--safety {mode!r}: choose one of {', '.join(MODES)}")
    return mode
