"""Alternative story endings: several drafts, the chosen ones good and different from each other.

:func:`write_endings` samples ``candidates`` continuations of one beginning, scores their
quality (generator mean log-probability, min-max scaled; plus the discriminator's
``P(real)`` when given) and picks ``endings`` of them greedily by maximal marginal
relevance (Carbonell & Goldstein 1998): each next pick maximises
``quality - diversity_weight * max BLEU-2 overlap with the picks so far``. The chosen set
is reported with its distinct-2 and leave-one-out Self-BLEU-2 (lower = more different).
"""
from __future__ import annotations

import torch

from gan_writer.metrics.bleu import self_bleu, sentence_bleu_scores
from gan_writer.metrics.distinct import distinct_n
from gan_writer.metrics.suite import metric_tokenizer
from gan_writer.tokenization import NEWLINE
from gan_writer.writing.constraints import constrained_sample, mean_log_prob
from gan_writer.writing.rerank import discriminator_probs, minmax
from gan_writer.writing.safety import SafetyFilter, check_mode

MAX_DRAFTS = 1024  # drafts sampled at once by write poem / story


def encode_prompt(tokenizer, text: str, what: str = "--beginning") -> torch.Tensor:
    """``(P,)`` ids of ``text`` (no special tokens).

    Raises:
        ValueError: if ``text`` is empty or has pieces outside the vocabulary (a few are named).
    """
    if not text.strip():
        raise ValueError(f"{what} is empty; give the story so far as text or @FILE")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = enc["input_ids"]
    unk = tokenizer.unk_token_id
    if unk is not None and unk in ids:
        bad = sorted({text[a:b] for (a, b), i in zip(enc["offset_mapping"], ids) if i == unk}) or [tokenizer.unk_token]
        raise ValueError(f"{what} has text outside the checkpoint's vocabulary ({', '.join(map(repr, bad[:5]))}); "
                         "use a checkpoint trained on this language or rephrase")
    return torch.tensor(ids, dtype=torch.long)


def clean(text: str) -> str:
    """Decoded text with the word tokenizer's leftover ``␤`` as line breaks and lines stripped."""
    return "\n".join(ln.strip() for ln in text.replace(NEWLINE, "\n").strip().split("\n")).strip()


def fit_prompt(prompt: torch.Tensor, length: int, max_positions: int | None) -> tuple[torch.Tensor, int]:
    """``(prompt, length)`` cut so that ``prompt + length`` tokens fit ``max_positions``.

    When they do not fit, the ending is first shortened to the room left after the whole
    prompt, but not below half the window; past that, the prompt's first tokens are dropped
    (its last ones are the context that matters for what comes next).

    Args:
        prompt: ``(P,)`` ids.
        length: tokens asked for.
        max_positions: the generator's window, ``None`` for unbounded.
    """
    if max_positions is None or prompt.numel() + length <= max_positions:
        return prompt, length
    length = min(length, max(max_positions - prompt.numel(), max(1, max_positions // 2)))
    return prompt[-(max_positions - length):], length


def select_diverse(quality: list[float], tokens: list[list[str]], k: int, diversity_weight: float = 1.0) -> list[int]:
    """Indices of ``k`` items picked greedily by maximal marginal relevance.

    Args:
        quality: per item, in [0, 1].
        tokens: per item, metric tokens (BLEU-2 overlap with the picks is the similarity).
        k: how many to pick (at most ``len(quality)``).
        diversity_weight: weight of the similarity penalty.
    """
    picked: list[int] = []
    left = list(range(len(quality)))
    while left and len(picked) < k:
        def gain(i: int) -> float:
            if not picked:
                return quality[i]
            sim = float(max(sentence_bleu_scores([tokens[i]], [tokens[j] for j in picked], 2)[0], 0.0)) if tokens[i] else 1.0
            return quality[i] - diversity_weight * sim
        best = max(left, key=lambda i: (gain(i), -i))
        picked.append(best)
        left.remove(best)
    return picked


def write_endings(art, beginning: str, endings: int = 3, length: int = 120, candidates: int | None = None,
                  seed: int = 0, safety: str = "flag", temperature: float = 1.0, discriminator=None,
                  safety_filter: SafetyFilter | None = None) -> list[dict]:
    """``endings`` alternative continuations of ``beginning``.

    Returns:
        One ``{"text", "report", "score"}`` per ending; ``report`` has ``label`` (A, B, ...),
        ``tokens``, ``mean_log_prob`` (nats/token), ``safety``, and ``set`` (``distinct_2``,
        ``self_bleu_2`` among the chosen endings, ``drafts``, ``length`` (tokens per ending at
        most, after :func:`fit_prompt`), ``beginning_tokens`` (the whole beginning's),
        ``max_positions``), ``prompt_tokens`` (those of the beginning the generator saw).

    Raises:
        ValueError: ``endings`` < 1 or ``length`` < 1, an empty beginning or one outside the
            vocabulary, or ``block`` mode with every draft flagged.
    """
    check_mode(safety)
    if endings < 1 or length < 1:
        raise ValueError(f"--endings and --length must be at least 1, got {endings} and {length}")
    candidates = max(candidates or 4 * endings, endings)
    if candidates > MAX_DRAFTS:
        raise ValueError(f"--endings and --candidates must be at most {MAX_DRAFTS} (drafts are sampled in one batch), "
                         f"got {endings} and {candidates}")
    tok, gen = art.tokenizer, art.generator
    full_prompt = encode_prompt(tok, beginning)
    prompt, length = fit_prompt(full_prompt, length, gen.max_positions)
    ids = constrained_sample(gen, candidates, length, None, prompt, temperature=temperature, seed=seed)
    texts = [clean(t) for t in tok.batch_decode(ids.tolist(), skip_special_tokens=True)]
    filt = safety_filter or SafetyFilter()
    checks = [filt.check(t) for t in texts]
    lp = mean_log_prob(gen, ids, prompt).tolist()
    quality = minmax(lp)
    if discriminator is not None:
        probs = discriminator_probs(discriminator[0], discriminator[1], ids, gen.eos_token_id)
        quality = [(q + p) / 2 for q, p in zip(quality, probs)]
    keep, seen = [], set()
    for i, t in enumerate(texts):
        if t and t not in seen and not (safety == "block" and checks[i].flagged):
            keep.append(i)
            seen.add(t)
    if not keep:
        raise ValueError("no usable draft (all empty, repeated or blocked); try another --seed or more --candidates")
    if safety == "rerank":
        quality = [q * (0.1 if checks[i].flagged else 1.0) for i, q in enumerate(quality)]
    mt = metric_tokenizer(art.meta.get("metric_tokenization") or "word")
    toks = [mt(texts[i]) for i in keep]
    order = [keep[j] for j in select_diverse([quality[i] for i in keep], toks, endings)]
    chosen = [mt(texts[i]) for i in order]
    stats = {"drafts": candidates, "length": length, "beginning_tokens": int(full_prompt.numel()),
             "max_positions": gen.max_positions,
             "distinct_2": float(distinct_n(chosen, 2)),
             "self_bleu_2": float(self_bleu(chosen, 2)) if len(chosen) >= 2 else 0.0}
    out = []
    for rank, i in enumerate(order):
        n_tok = int((ids[i] != gen.pad_token_id).sum())
        report = {"label": chr(ord("A") + rank), "tokens": n_tok, "mean_log_prob": round(lp[i], 4),
                  "safety": checks[i].to_dict(), "set": stats, "prompt_tokens": int(prompt.numel())}
        out.append({"text": texts[i], "report": report, "score": round(quality[i], 4)})
    return out
