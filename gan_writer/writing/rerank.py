"""Soft constraints by reranking drafts: form, keywords, fluency (NLL), discriminator, safety.

Each draft gets a score in [0, 1] from weighted parts, all in [0, 1]:

* ``form``: Chinese ``(tone_score + rhyme_ok) / 2`` (平仄 pattern match and 平水韵 rhyme);
  English the mean of the fraction of rhyme pairs that rhyme and ``1 / (1 + syllable_err)``
  (so syllables/meter are soft); 0 when the line structure is wrong.
* ``keywords``: fraction of the requested keywords that appear.
* ``fluency``: the draft's mean log-probability under the generator (nats per token),
  min-max scaled over the drafts (1 = the likeliest).
* ``discriminator``: the discriminator's probability that the draft is real, when one is given.

A draft flagged by the safety filter in ``rerank`` mode has its score multiplied by 0.1 and
is ranked after every clean draft.
"""
from __future__ import annotations

import re

from dataclasses import dataclass
from typing import Sequence

import torch

DEFAULT_WEIGHTS = {"form": 1.0, "keywords": 0.5, "fluency": 0.5, "discriminator": 0.5}


def form_score(report: dict) -> float:
    """Form part of the score, in [0, 1], from a :func:`gan_writer.writing.forms.form_report` dict."""
    if not report["line_ok"]:
        return 0.0
    if "tone_score" in report:
        return 0.5 * report["tone_score"] + 0.5 * float(report["rhyme_ok"])
    pairs = report["rhyme_pairs"]
    rhyme = sum(p["rhyme"] for p in pairs) / len(pairs) if pairs else 1.0
    err = report["syllable_err"]
    syll = 1.0 / (1.0 + err) if err is not None else 1.0
    return 0.5 * rhyme + 0.5 * syll


def keywords_found(text: str, keywords: Sequence[str]) -> list[bool]:
    """For each keyword, whether ``text`` contains it (case-insensitive): a keyword of Latin
    letters as a whole word ("art" is not found in "heart"), any other (Chinese) as a substring."""
    low = text.lower()
    found = []
    for k in keywords:
        k = k.lower()
        if re.fullmatch(r"[a-z][a-z'-]*", k):
            found.append(re.search(rf"(?<![a-z]){re.escape(k)}(?![a-z])", low) is not None)
        else:
            found.append(k in low)
    return found


def keyword_score(text: str, keywords: Sequence[str]) -> float:
    """Fraction of ``keywords`` found in ``text`` (:func:`keywords_found`); 1.0 without keywords."""
    if not keywords:
        return 1.0
    return sum(keywords_found(text, keywords)) / len(keywords)


def minmax(values: Sequence[float]) -> list[float]:
    """Scale ``values`` to [0, 1] (all 1.0 when they are equal)."""
    lo, hi = min(values), max(values)
    return [1.0 if hi - lo < 1e-12 else (v - lo) / (hi - lo) for v in values]


@dataclass
class Ranked:
    """One scored draft: ``index`` into the drafts, ``score`` and its ``parts``."""

    index: int
    score: float
    parts: dict


def rerank(
    reports: Sequence[dict],
    texts: Sequence[str],
    mean_log_probs: Sequence[float],
    keywords: Sequence[str] = (),
    disc_probs: Sequence[float] | None = None,
    flagged: Sequence[bool] | None = None,
    weights: dict | None = None,
) -> list[Ranked]:
    """Score and sort drafts, best first.

    Args:
        reports: form reports (None entries for drafts without a form, e.g. story endings).
        texts: the drafts.
        mean_log_probs: generator log-probability per token of each draft (nats).
        keywords: requested keywords.
        disc_probs: discriminator probabilities of "real", or None.
        flagged: safety flags (penalised ×0.1 and ranked after the clean drafts), or None.
        weights: overrides of :data:`DEFAULT_WEIGHTS`.

    Returns:
        ``len(texts)`` :class:`Ranked`, sorted by score (descending), ties by index.
    """
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    fluency = minmax(list(mean_log_probs)) if len(mean_log_probs) else []
    out = []
    for i, text in enumerate(texts):
        parts = {"fluency": fluency[i], "mean_log_prob": float(mean_log_probs[i])}
        used = {"fluency": parts["fluency"]}
        if reports[i] is not None:
            used["form"] = parts["form"] = form_score(reports[i])
        if keywords:
            used["keywords"] = parts["keywords"] = keyword_score(text, keywords)
        if disc_probs is not None:
            used["discriminator"] = parts["discriminator"] = float(disc_probs[i])
        total = sum(w[k] for k in used)
        score = sum(w[k] * v for k, v in used.items()) / total
        if flagged is not None and flagged[i]:
            score *= 0.1
        out.append(Ranked(i, round(score, 4), {k: round(v, 4) for k, v in parts.items()}))
    bad = set(i for i, f in enumerate(flagged or []) if f)
    return sorted(out, key=lambda r: (r.index in bad, -r.score, r.index))


@torch.no_grad()
def discriminator_probs(disc, spec: dict, ids: torch.Tensor, eos_token_id: int | None) -> list[float]:
    """``P(real)`` of each row of ``ids`` ``(N, T)`` (sigmoid of the discriminator's logit).

    Rows are padded or cut to the discriminator's ``max_length`` with its ``pad_token_id``.
    """
    from gan_writer.sampling import mask_after_eos

    length = int(spec.get("max_length") or ids.size(1))
    ids = ids[:, :length]
    if ids.size(1) < length:
        ids = torch.nn.functional.pad(ids, (0, length - ids.size(1)), value=int(spec.get("pad_token_id", 0)))
    mask = mask_after_eos(ids, eos_token_id)
    ids = ids.masked_fill(mask == 0, int(spec.get("pad_token_id", 0)))
    disc.eval()
    return torch.sigmoid(disc(ids, mask).float()).tolist()
