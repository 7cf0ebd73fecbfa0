"""A causal (prefix) discriminator: one "is this real" logit for every prefix of a sequence.

ScratchGAN (de Masson d'Autume et al. 2019, "Training Language GANs from Scratch") scores
each prefix ``y_1..y_t`` with a recurrent discriminator and uses the scores as per-step
rewards: every token gets a reward from one forward pass, instead of SeqGAN's Monte Carlo
completions. The logit at position ``t`` depends on ``y_1..y_t`` only (an LSTM, or a GPT-2
with its causal attention mask), so tokens after ``t`` never change it.

Trained on real vs generated sequences *at every position* (:func:`prefix_discriminator_loss`,
which :func:`gan_writer.systems.discriminator.discriminator_loss` dispatches to), so the
same pretraining and adversarial stages train it. ``forward`` gives the logit of the whole
sequence (its last real position), so it is also a drop-in sequence discriminator.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_writer.models.discriminator import Discriminator

__all__ = ["PrefixDiscriminator", "prefix_discriminator_loss", "PREFIX_KINDS"]

#: ``DiscriminatorConfig.kind`` values that build a :class:`PrefixDiscriminator`
PREFIX_KINDS = {"prefix_lstm": "lstm", "prefix_transformer": "transformer"}


class PrefixDiscriminator(Discriminator):
    """Per-prefix logits from an LSTM or a small causal GPT-2, plus a linear head.

    Args:
        vocab_size: generator vocabulary size ``V``.
        max_length: longest sequence accepted.
        pad_token_id: id placed at padded positions.
        backbone: ``lstm`` or ``transformer`` (GPT-2, causal attention).
        embed_dim: LSTM embedding and hidden size / the transformer's ``n_embd``.
        n_layer, n_head: depth (both) and heads (transformer).
        dropout: dropout of the LSTM / transformer.

    Raises:
        ValueError: unknown ``backbone``.
    """

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        pad_token_id: int = 0,
        backbone: str = "lstm",
        embed_dim: int = 64,
        n_layer: int = 1,
        n_head: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.max_length, self.pad_token_id, self.backbone = int(max_length), int(pad_token_id), backbone
        if backbone == "lstm":
            self.embed = nn.Embedding(vocab_size, embed_dim)
            self.rnn = nn.LSTM(embed_dim, embed_dim, num_layers=n_layer, batch_first=True,
                               dropout=dropout if n_layer > 1 else 0.0)
        elif backbone == "transformer":
            from transformers import GPT2Config, GPT2Model

            cfg = GPT2Config(vocab_size=vocab_size, n_positions=max_length, n_embd=embed_dim, n_layer=n_layer,
                             n_head=n_head, resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                             pad_token_id=pad_token_id)
            self.model = GPT2Model(cfg)
        else:
            raise ValueError(f"prefix discriminator backbone must be 'lstm' or 'transformer', got {backbone!r}")
        self.head = nn.Linear(embed_dim, 1)

    def prefix_logits(self, ids: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        """Logit that the prefix ``y_1..y_t`` is the start of a real sequence, for every ``t``.

        Args:
            ids: ``(B, T)`` token ids; attention_mask: ``(B, T)`` 1 real / 0 padding.

        Returns:
            ``(B, T')`` float logits (``T' = min(T, max_length)`` when the tail is padding),
            0 at padding. Position ``t`` depends only on ``ids[:, :t+1]``.
        """
        ids, mask = self._prepare(ids, attention_mask)
        if self.backbone == "lstm":
            hidden, _ = self.rnn(self.embed(ids))
        else:
            hidden = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        logits = self.head(hidden).squeeze(-1).float()
        return torch.where(mask, logits, torch.zeros((), device=logits.device))

    def forward(self, ids: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        """``(B,)`` logit of each whole sequence: the prefix logit at its last real position."""
        logits = self.prefix_logits(ids, attention_mask)
        mask = (torch.ones_like(ids) if attention_mask is None else attention_mask)[:, : logits.size(1)]
        last = (mask.long().sum(1) - 1).clamp(min=0).to(logits.device)
        return logits[torch.arange(logits.size(0), device=logits.device), last]


def prefix_discriminator_loss(disc: PrefixDiscriminator, real: dict[str, Tensor], fake: dict[str, Tensor]):
    """BCE of every real prefix (label 1) and every generated prefix (label 0), averaged
    over real tokens; the same return values as
    :func:`gan_writer.systems.discriminator.discriminator_loss`: ``(loss, bce, acc_real,
    acc_fake)``, accuracies over prefixes at threshold 0.5."""
    parts = []
    for batch, label in ((real, 1.0), (fake, 0.0)):
        logits = disc.prefix_logits(batch["ids"], batch["attention_mask"])
        m = batch["attention_mask"][:, : logits.size(1)].to(logits.device) != 0
        parts.append((logits[m], torch.full_like(logits[m], label)))
    logits = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    bce = F.binary_cross_entropy_with_logits(logits, labels)
    acc_r = (parts[0][0] > 0).float().mean()
    acc_f = (parts[1][0] <= 0).float().mean()
    return bce + disc.l2_penalty(), bce.detach(), acc_r, acc_f
