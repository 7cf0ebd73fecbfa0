"""Form metrics: how often samples keep a poem form (line shape, 平仄, rhyme, syllables).

Averages of :func:`gan_writer.writing.forms.form_report` over texts, logged by
:class:`gan_writer.callbacks.metrics.TextMetricsCallback` (``form=...``) under the fixed keys
``metrics/form_line_ok``, ``metrics/form_tone_ok`` (Chinese forms only),
``metrics/form_rhyme_ok`` (forms with a rhyme) and ``metrics/form_syllable_err``.
"""
from __future__ import annotations

from typing import Sequence

from gan_writer.writing.forms import form_report, get_form

FORM_KEYS = ("form_line_ok", "form_tone_ok", "form_rhyme_ok", "form_syllable_err")


def form_metrics(texts: Sequence[str], form: str, scheme: str | None = None) -> dict[str, float]:
    """Form metrics of ``texts`` under ``form``.

    Args:
        texts: decoded poems (``S >= 1``).
        form: a form name (see :data:`gan_writer.writing.forms.FORMS`).
        scheme: English rhyme scheme (default: the form's).

    Returns:
        ``{"form_line_ok", "form_tone_ok", "form_rhyme_ok", "form_syllable_err"}``: the
        fraction of texts with exact line count/length, with every checked 平仄 position
        matching a standard pattern, whose rhyme lines rhyme, and the mean absolute
        deviation from the target syllables per line (a Chinese character is a syllable).
        ``form_tone_ok`` only for Chinese forms, ``form_rhyme_ok`` only with a rhyme,
        ``form_syllable_err`` only with targets.

    Raises:
        ValueError: for an unknown form or no texts.
    """
    the_form, scheme = get_form(form, scheme)
    if not texts:
        raise ValueError("form_metrics needs at least one text")
    reports = [form_report(t, the_form, scheme) for t in texts]
    out = {"form_line_ok": _mean([r["line_ok"] for r in reports])}
    if the_form.language == "zh":
        out["form_tone_ok"] = _mean([r["tone_ok"] for r in reports])
    if the_form.language == "zh" or scheme:
        out["form_rhyme_ok"] = _mean([bool(r["rhyme_ok"]) for r in reports])
    errs = [r["syllable_err"] for r in reports if r["syllable_err"] is not None]
    if errs:
        out["form_syllable_err"] = _mean(errs)
    return out


def _mean(xs) -> float:
    xs = [float(x) for x in xs]
    return sum(xs) / len(xs)
