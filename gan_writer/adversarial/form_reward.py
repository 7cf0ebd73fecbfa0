"""An optional form term in the adversarial reward (``form_reward_weight``).

:func:`form_reward` scores whole sampled sequences by how well they keep a poem form
(:func:`gan_writer.writing.rerank.form_score`: 0 when the line structure is wrong, else the
平仄/rhyme or rhyme/syllable score), a pure function of token ids. :func:`with_form_reward`
mixes it into the discriminator's probability of "real", so Monte Carlo rollouts
(:func:`gan_writer.adversarial.rollout.mc_rollout_rewards`, which complete every prefix
before scoring it) reward every token with
``(1 - w) * D(Y) + w * form(Y)``, still in [0, 1].
"""
from __future__ import annotations

from typing import Callable

import torch

from gan_writer.sampling import mask_after_eos
from gan_writer.writing.forms import form_report, get_form
from gan_writer.writing.poem import poem_text
from gan_writer.writing.rerank import form_score


def form_reward(ids: torch.Tensor, tokenizer, form: str, eos_token_id: int | None, scheme: str | None = None) -> torch.Tensor:
    """Per-sequence form score in [0, 1].

    Args:
        ids: ``(B, T)`` int64 sampled tokens (no BOS; EOS then padding).
        tokenizer: decodes ids (special tokens dropped).
        form: a form name (see :data:`gan_writer.writing.forms.FORMS`).
        eos_token_id: tokens after the first EOS are ignored.
        scheme: English rhyme scheme (default: the form's).

    Returns:
        ``(B,)`` float32 on ``ids.device``.

    Raises:
        ValueError: unknown form or a rhyme scheme that does not fit it.
    """
    the_form, scheme = get_form(form, scheme)
    mask = mask_after_eos(ids, eos_token_id)
    rows = [row[: int(m.sum())].tolist() for row, m in zip(ids, mask)]
    texts = tokenizer.batch_decode(rows, skip_special_tokens=True)
    scores = [form_score(form_report(poem_text(t, the_form.language), the_form, scheme)) for t in texts]
    return torch.tensor(scores, dtype=torch.float32, device=ids.device)


def with_form_reward(discriminator, tokenizer, form: str, weight: float, eos_token_id: int | None,
                     scheme: str | None = None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A discriminator callable ``(ids (N, T), mask (N, T)) -> (N,)`` with the form term mixed in.

    Args:
        discriminator: a :class:`~gan_writer.models.discriminator.Discriminator` (its
            ``prob_real``) or a callable returning probabilities of "real".
        weight: ``form_reward_weight`` ``w`` in [0, 1]; 0 returns ``discriminator`` itself.

    The wrapped module is put in eval mode while it scores (the rollout code does that only
    for a bare module) and restored after.

    Raises:
        ValueError: if ``weight`` is outside [0, 1], or from :func:`form_reward`'s form checks.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"form_reward_weight must be in [0, 1], got {weight}")
    get_form(form, scheme)
    if weight == 0.0:
        return discriminator
    prob = getattr(discriminator, "prob_real", None) or discriminator

    def mixed(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        was_training = bool(getattr(discriminator, "training", False))
        if was_training:  # as mc_rollout_rewards does for a bare module: no dropout while scoring
            discriminator.eval()
        try:
            p = prob(ids, mask).float()
        finally:
            if was_training:
                discriminator.train()
        return (1.0 - weight) * p + weight * form_reward(ids, tokenizer, form, eos_token_id, scheme).to(p.device)

    return mixed
