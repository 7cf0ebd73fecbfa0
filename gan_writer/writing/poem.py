"""Poems in a chosen form: constrained drafts, form reports, reranking, safety.

:func:`write_poems` draws ``candidates`` drafts under the form's hard constraints
(:class:`gan_writer.writing.constraints.FormProcessor`), writes a form report for each,
scores them (:mod:`gan_writer.writing.rerank`) and returns the best ``n`` distinct ones
as ``{"text", "report", "score"}`` dicts — the JSON schema of ``gan-writer write``.
"""
from __future__ import annotations

from typing import Sequence

import torch

from gan_writer.writing.constraints import FormProcessor, constrained_sample, max_tokens, mean_log_prob
from gan_writer.writing.forms import form_report, format_chinese, get_form, split_lines
from gan_writer.writing.rerank import discriminator_probs, keywords_found, rerank
from gan_writer.writing.safety import SafetyFilter, check_mode
from gan_writer.writing.story import MAX_DRAFTS

MAX_BLOCK_ROUNDS = 5


def check_in_vocabulary(tokenizer, words: Sequence[str], what: str = "keyword") -> None:
    """Raise if a word is empty or encodes to the tokenizer's unknown token.

    Raises:
        ValueError: naming the word and what to do.
    """
    for w in words:
        if not w.strip():
            raise ValueError(f"empty {what} in the list; separate {what}s with commas, e.g. 月,江")
        ids = tokenizer(w, add_special_tokens=False)["input_ids"]
        if not ids or (tokenizer.unk_token_id is not None and tokenizer.unk_token_id in ids):
            raise ValueError(f"{what} {w!r} is not in the checkpoint's vocabulary; choose another or drop it")


def poem_text(raw: str, language: str) -> str:
    """A decoded draft laid out one line per ``\\n`` (Chinese lines keep their ``，``/``。``)."""
    lines = split_lines(raw, language)
    return format_chinese(lines) if language == "zh" else "\n".join(lines)


def write_poems(
    art,
    form: str,
    rhyme: str | None = None,
    keywords: Sequence[str] = (),
    title: str | None = None,
    n: int = 3,
    candidates: int = 16,
    seed: int = 0,
    safety: str = "flag",
    temperature: float = 1.0,
    discriminator: tuple | None = None,
    safety_filter: SafetyFilter | None = None,
    strict_rhyme: bool = False,
) -> list[dict]:
    """Write ``n`` poems in ``form`` with the checkpoint's generator.

    Args:
        art: :class:`gan_writer.checkpoint.Artifacts` (generator + tokenizer).
        form: a name from :data:`gan_writer.writing.forms.FORMS`.
        rhyme: English rhyme scheme (one letter per line), default the form's.
        keywords: words the poem should contain (soft: reranked).
        title: shown with the poem (the small models are not trained on titles, so it does
            not condition the draft).
        n: poems returned; ``candidates``: drafts drawn (at least ``n``).
        seed: sampling seed (same seed, same poems).
        safety: ``flag`` | ``rerank`` | ``block`` (see :mod:`gan_writer.writing.safety`).
        temperature: sampling temperature.
        discriminator: ``(module, spec)`` from ``load_discriminator``, scoring drafts, or None.
        safety_filter: the filter to use (default: :class:`SafetyFilter` with its list).
        strict_rhyme: Chinese forms: make the 平水韵 rhyme of the even lines hard
            (see :class:`gan_writer.writing.constraints.FormProcessor`).

    Returns:
        ``n`` dicts (fewer if fewer distinct drafts survive): ``text``, ``report`` (the form
        report plus ``title``, ``safety`` and ``score_parts``), ``score`` in [0, 1].

    Raises:
        ValueError: unknown form, a rhyme scheme that does not fit it, a keyword outside
            the vocabulary, ``n`` or ``candidates`` < 1, a tokenizer that cannot write the form,
            or ``block`` mode finding no clean draft.
    """
    the_form, scheme = get_form(form, rhyme)
    check_mode(safety)
    if n < 1 or candidates < 1:
        raise ValueError(f"--n and --candidates must be at least 1, got {n} and {candidates}")
    if max(n, candidates) > MAX_DRAFTS:
        raise ValueError(f"--n and --candidates must be at most {MAX_DRAFTS} (drafts are sampled in one batch), "
                         f"got {n} and {candidates}")
    tok, gen = art.tokenizer, art.generator
    check_in_vocabulary(tok, keywords)
    if strict_rhyme and the_form.language != "zh":
        raise ValueError("--strict-rhyme is for Chinese forms; English rhyme schemes are always hard")
    steps = _draft_steps(the_form, form, gen.max_positions)
    proc = FormProcessor(the_form, tok, gen.eos_token_id, scheme, steps=steps, strict_rhyme=strict_rhyme)
    filt = safety_filter or SafetyFilter()
    kept = _draw_drafts(gen, tok, proc, the_form.language, max(candidates, n), n, steps, temperature, seed, safety,
                        filt)
    texts = [t for t, _ in kept]
    rows = torch.nn.utils.rnn.pad_sequence([r for _, r in kept], batch_first=True, padding_value=gen.pad_token_id)
    reports = [form_report(t, the_form, scheme) for t in texts]
    checks = [filt.check(t) for t in texts]
    lp = mean_log_prob(gen, rows).tolist()
    disc = discriminator_probs(discriminator[0], discriminator[1], rows, gen.eos_token_id) if discriminator else None
    ranked = rerank(reports, texts, lp, keywords, disc, [c.flagged for c in checks] if safety == "rerank" else None)
    out = []
    for r in ranked[:n]:
        report = {**reports[r.index], "title": title, "safety": checks[r.index].to_dict(), "score_parts": r.parts}
        if keywords:
            hits = keywords_found(texts[r.index], keywords)
            report["keywords"] = {"found": [k for k, h in zip(keywords, hits) if h],
                                  "missing": [k for k, h in zip(keywords, hits) if not h]}
        out.append({"text": texts[r.index], "report": report, "score": r.score})
    return out


def _draft_steps(the_form, form: str, max_positions: int | None) -> int:
    """Tokens a draft of ``the_form`` may take within the model's ``max_positions``.

    Raises:
        ValueError: when the model's positions cannot hold the form.
    """
    steps = max_tokens(the_form, max_positions or 256)
    if max_positions is not None:
        steps = min(steps, max_positions)
    if the_form.language == "zh" and steps < max_tokens(the_form, 0):
        raise ValueError(f"the model's {max_positions} positions cannot hold a {form} "
                         f"({max_tokens(the_form, 0)} tokens with punctuation); choose a shorter form")
    if the_form.lines and steps < 2 * the_form.lines:
        raise ValueError(f"the model's {max_positions} positions cannot hold {the_form.lines} lines; "
                         "choose a shorter form")
    return steps


def _draw_drafts(gen, tok, proc: FormProcessor, language: str, candidates: int, n: int, steps: int,
                 temperature: float, seed: int, safety: str, filt: SafetyFilter) -> list[tuple[str, torch.Tensor]]:
    """Distinct drafts ``(text, ids (T,))`` in sampling order: one batch of ``candidates``, or
    with ``safety == "block"`` up to :data:`MAX_BLOCK_ROUNDS` batches (seed ``seed + 1000 * round``)
    until ``n`` unflagged drafts are kept.

    Raises:
        ValueError: ``block`` mode finding no clean draft.
    """
    kept: list[tuple[str, torch.Tensor]] = []
    seen: set[str] = set()
    for round_ in range(MAX_BLOCK_ROUNDS if safety == "block" else 1):
        ids = constrained_sample(gen, candidates, steps, proc, temperature=temperature, seed=seed + 1000 * round_)
        for row, raw in zip(ids, tok.batch_decode(ids.tolist(), skip_special_tokens=True)):
            text = poem_text(raw, language)
            if text in seen:
                continue
            seen.add(text)
            if safety == "block" and filt.check(text).flagged:
                continue
            kept.append((text, row))
        if len(kept) >= n:
            break
    if not kept:
        raise ValueError(f"--safety block: all drafts in {MAX_BLOCK_ROUNDS} rounds were flagged; try another --seed")
    return kept
