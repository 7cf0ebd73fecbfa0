"""Discriminators for SeqGAN-style adversarial text generation.

Both discriminators are plain ``nn.Module``\\ s with the same interface::

    logits = disc(ids, attention_mask)          # (B,) logit that each sequence is real
    p_real = disc.prob_real(ids, attention_mask)  # (B,) sigmoid(logits)

``ids`` is a ``LongTensor`` of shape ``(B, T)`` in the *generator's* vocabulary (no BOS;
a sequence ends with EOS, then padding) and ``attention_mask`` is ``(B, T)`` with 1 for real
tokens and 0 for padding. Padding is defined by the mask alone, never by the ids: some
pretrained tokenizers use the EOS id as the pad id, so an id cannot tell EOS from padding.
Batches are expected to be right-padded (real tokens first), as the generator produces them.

* :class:`CNNDiscriminator` -- the SeqGAN text CNN (Yu et al. 2017, "SeqGAN: Sequence
  Generative Adversarial Nets with Policy Gradient", AAAI; the CNN is Kim 2014,
  "Convolutional Neural Networks for Sentence Classification", with one highway layer,
  Srivastava et al. 2015, "Highway Networks").
* :class:`TransformerDiscriminator` -- any ``transformers`` sequence-classification model with
  one output label, built from a (small, default) config or loaded with ``from_pretrained``.
* :func:`build_discriminator` -- factory by kind name (``"cnn"`` or ``"transformer"``).

The CNN has two options (issue 18): ``impl`` -- ``"fast"`` (the default: strided windows and
one matmul per width) or ``"reference"`` (``Conv1d`` per width, the code before the option
existed; the same function, equal up to float rounding) -- and ``highway`` -- ``"seqgan"`` (the
default, the paper's two matrices) or ``"single"`` (TextGAN-PyTorch's one-matrix highway, a
different, smaller architecture, opt-in).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_writer.models.cnn_layers import WGRAD_ROWS, Highway, SingleHighway, windowed_conv_max

__all__ = [
    "Discriminator",
    "CNNDiscriminator",
    "TransformerDiscriminator",
    "build_discriminator",
    "DEFAULT_FILTER_SIZES",
    "DEFAULT_NUM_FILTERS",
    "CNN_IMPLS",
    "HIGHWAYS",
    "Highway",
    "SingleHighway",
]

#: Filter widths and counts of the SeqGAN discriminator (1720 feature maps in total).
DEFAULT_FILTER_SIZES: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20)
DEFAULT_NUM_FILTERS: tuple[int, ...] = (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160)
#: ``CNNDiscriminator(impl=...)``: how the convolutions are computed (same weights, same function).
CNN_IMPLS: tuple[str, ...] = ("reference", "fast")
#: ``CNNDiscriminator(highway=...)``: SeqGAN's two-matrix highway or TextGAN-PyTorch's one-matrix one.
HIGHWAYS: tuple[str, ...] = ("seqgan", "single")


class Discriminator(nn.Module):
    """Base class: ``forward(ids, attention_mask) -> (B,)`` logits of "real", plus
    :meth:`prob_real`, :meth:`l2_penalty` (zero unless overridden) and input checking."""

    max_length: int
    pad_token_id: int
    #: True where scoring the real and the generated minibatch in one ``forward`` call (rows
    #: concatenated) is worth it and gives the same scores up to float rounding; the
    #: discriminator loss then does so (:func:`gan_writer.systems.disc_training.discriminator_loss`).
    scores_jointly: bool = False

    def prob_real(self, ids: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        """Probability that each sequence is real: ``sigmoid(forward(ids, attention_mask))``, (B,)."""
        return torch.sigmoid(self(ids, attention_mask))

    def l2_penalty(self) -> Tensor:
        """Regularisation term for the training stage to add to the loss (0 here)."""
        p = next(self.parameters(), None)
        return torch.zeros((), device=p.device if p is not None else None)

    def _prepare(self, ids: Tensor, attention_mask: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """Validate shapes, trim trailing all-padding columns beyond ``max_length``, and
        replace ids at padded positions with ``pad_token_id`` (so any filler id is safe).

        Returns ``(ids, mask)`` with ``mask`` a bool tensor of the same shape ``(B, T')``.

        Raises:
            ValueError: ``ids`` is not 2-D, the mask shape differs from ``ids``, or a real
                (mask == 1) token lies beyond ``max_length``.
        """
        if ids.dim() != 2:
            raise ValueError(f"ids must have shape (B, T), got {tuple(ids.shape)}")
        if attention_mask is None:
            mask = torch.ones_like(ids, dtype=torch.bool)
        else:
            if attention_mask.shape != ids.shape:
                raise ValueError(
                    f"attention_mask shape {tuple(attention_mask.shape)} != ids shape {tuple(ids.shape)}"
                )
            mask = attention_mask.to(device=ids.device) != 0
        if ids.shape[1] > self.max_length:
            if bool(mask[:, self.max_length :].any()):
                real_len = int(mask.long().cumsum(1).argmax(1).max()) + 1
                raise ValueError(
                    f"sequence of length {real_len} exceeds the discriminator's "
                    f"max_length={self.max_length}"
                )
            ids, mask = ids[:, : self.max_length], mask[:, : self.max_length]
        ids = ids.long().masked_fill(~mask, self.pad_token_id)
        return ids, mask


class CNNDiscriminator(Discriminator):
    """The SeqGAN discriminator: a Kim (2014) text CNN with a highway layer.

    embedding (``embed_dim``) -> for each width ``k`` in ``filter_sizes``: Conv1d with
    ``num_filters`` maps, ReLU, max over time -> concatenate (1720 features by default) ->
    highway -> dropout (``dropout=0.25``, i.e. SeqGAN's keep probability 0.75) -> linear to
    one logit. SeqGAN uses a 2-way softmax; a single logit with a sigmoid is equivalent.

    Padding (documented choice): the embedding of every masked position is set to zero and the
    embedded sequence is zero-padded to a fixed length ``L = max(max_length, max(filter_sizes))``,
    like SeqGAN, which always works on fixed-length sequences (and needs ``L`` at least the widest
    filter). Convolution windows that cover padding are *not* masked out of the max-pool (SeqGAN
    pools over windows of pad tokens too); because the ``(B, L, E)`` input is the same whatever
    length ``T <= L`` the batch was padded to, the score is exactly padding-invariant. Unlike
    SeqGAN the pad embedding is zero rather than learned, and the pad id is not special: the EOS
    row stays trainable even when pad id == EOS id.

    Initialisation follows the SeqGAN code: embedding U(-1, 1); convolution and output weights
    truncated normal (std 0.1) with bias 0.1. SeqGAN calls its highway with gate bias 0 (the
    ``highway()`` function's default of -2.0 is overridden by the call), hence
    ``highway_bias=0.0``; pass -2.0 for the Srivastava et al. carry-biased variant.

    Args:
        vocab_size: generator vocabulary size.
        max_length: longest sequence (real tokens) accepted.
        embed_dim, filter_sizes, num_filters: architecture (SeqGAN defaults).
        dropout: dropout probability before the output layer (1 - keep_prob).
        l2_reg_lambda: weight of :meth:`l2_penalty` (SeqGAN: 0.2).
        pad_token_id: id substituted at padded positions before the lookup (its value does not
            affect the score).
        highway_bias: constant added to the highway gate pre-activation.
        impl: ``"fast"`` (default: :func:`windowed_conv_max`, one strided window view and one
            ``addmm`` per width; and :attr:`scores_jointly`, so the training loss scores real
            and generated rows in one call; ~1.3-1.4x faster discriminator epochs on a CPU) or
            ``"reference"`` (``Conv1d`` per width, the real and the generated minibatch scored
            in separate calls: bit-identical to the code before the option existed, and to
            runs made with it). Same weights and state dict; scores differ by float rounding
            only (max |logit difference| ~6e-6 at |logits| ~4, ``tests/test_discriminator.py``).
            It can be switched on a built module (``disc.impl = "reference"``).
        highway: ``"seqgan"`` (default: :class:`Highway`, SeqGAN's two matrices) or
            ``"single"`` (:class:`SingleHighway`, TextGAN-PyTorch's one matrix: 2.96 M fewer
            parameters, about half the highway's time). A different architecture: its state
            dict holds ``highway.linear`` instead of ``highway.transform``/``highway.gate``.

    Raises:
        ValueError: on inconsistent or non-positive sizes, or an unknown ``impl``/``highway``.
    """

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        embed_dim: int = 64,
        filter_sizes: Sequence[int] = DEFAULT_FILTER_SIZES,
        num_filters: Sequence[int] = DEFAULT_NUM_FILTERS,
        dropout: float = 0.25,
        l2_reg_lambda: float = 0.2,
        pad_token_id: int = 0,
        highway_bias: float = 0.0,
        impl: str = "fast",
        highway: str = "seqgan",
    ) -> None:
        super().__init__()
        if highway not in HIGHWAYS:
            raise ValueError(f"unknown highway {highway!r}; expected one of {HIGHWAYS}")
        filter_sizes, num_filters = tuple(int(k) for k in filter_sizes), tuple(int(n) for n in num_filters)
        if len(filter_sizes) != len(num_filters) or not filter_sizes:
            raise ValueError(
                f"filter_sizes ({len(filter_sizes)}) and num_filters ({len(num_filters)}) "
                "must be non-empty and of equal length"
            )
        if min(filter_sizes) < 1 or min(num_filters) < 1:
            raise ValueError("filter_sizes and num_filters must be positive")
        if vocab_size < 1 or max_length < 1 or embed_dim < 1:
            raise ValueError("vocab_size, max_length and embed_dim must be positive")
        if not 0 <= pad_token_id < vocab_size:
            raise ValueError(f"pad_token_id={pad_token_id} outside the vocabulary [0, {vocab_size})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.vocab_size, self.max_length, self.pad_token_id = int(vocab_size), int(max_length), int(pad_token_id)
        self.filter_sizes, self.num_filters = filter_sizes, num_filters
        self.l2_reg_lambda = float(l2_reg_lambda)
        self.seq_len = max(self.max_length, max(filter_sizes))
        self.num_filters_total = sum(num_filters)

        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, n, k) for k, n in zip(filter_sizes, num_filters))
        self.impl = impl
        self.highway_kind = highway
        #: the fast path's highway weight gradient in chunks of this many rows (``cnn_layers.linear``;
        #: 0: one product). A speed setting, not saved: the same function either way.
        self.wgrad_rows = WGRAD_ROWS
        highway_cls = Highway if highway == "seqgan" else SingleHighway
        self.highway = highway_cls(self.num_filters_total, gate_bias=highway_bias)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(self.num_filters_total, 1)

        nn.init.uniform_(self.embedding.weight, -1.0, 1.0)
        for layer in (*self.convs, self.output):
            nn.init.trunc_normal_(layer.weight, std=0.1, a=-0.2, b=0.2)
            nn.init.constant_(layer.bias, 0.1)

    @property
    def impl(self) -> str:
        """``"fast"`` or ``"reference"`` (see the class docstring); settable."""
        return self._impl

    @impl.setter
    def impl(self, value: str) -> None:
        if value not in CNN_IMPLS:
            raise ValueError(f"unknown impl {value!r}; expected one of {CNN_IMPLS}")
        self._impl = value

    @property
    def scores_jointly(self) -> bool:  # type: ignore[override]
        """True with ``impl="fast"``: the loss scores real and generated rows in one call."""
        return self._impl == "fast"

    def features(self, ids: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        """Max-pooled convolution features after the highway layer (before dropout), (B, 1720)."""
        ids, mask = self._prepare(ids, attention_mask)
        emb = self.embedding(ids) * mask.unsqueeze(-1).to(self.embedding.weight.dtype)  # (B, T, E)
        if self._impl == "fast":
            pooled = windowed_conv_max(F.pad(emb, (0, 0, 0, self.seq_len - ids.shape[1])), self.convs)  # (B, L, E)
            return self.highway(pooled, wgrad_rows=self.wgrad_rows)
        x = F.pad(emb.transpose(1, 2), (0, self.seq_len - ids.shape[1]))  # (B, E, L)
        pooled = torch.cat([F.relu(conv(x)).amax(dim=-1) for conv in self.convs], dim=1)
        return self.highway(pooled)

    def forward(self, ids: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        """Logit that each sequence is real.

        Args:
            ids: (B, T) token ids in the generator vocabulary.
            attention_mask: (B, T), 1 = real token, 0 = padding; ``None`` means all real.

        Returns:
            (B,) float logits.

        Raises:
            ValueError: bad shapes, or real tokens beyond ``max_length`` (trailing padding
                beyond it is dropped).
        """
        return self.output(self.dropout(self.features(ids, attention_mask))).squeeze(-1)

    def l2_penalty(self) -> Tensor:
        """SeqGAN's regulariser: ``l2_reg_lambda * (l2_loss(W) + l2_loss(b))`` of the output
        layer, with TensorFlow's ``l2_loss(x) = sum(x ** 2) / 2``. Add it to the loss."""
        w, b = self.output.weight, self.output.bias
        return self.l2_reg_lambda * 0.5 * (w.pow(2).sum() + b.pow(2).sum())


class TransformerDiscriminator(Discriminator):
    """A ``transformers`` sequence-classification model (``num_labels=1``) as discriminator.

    Sources (exactly one): ``pretrained`` (a local directory or hub name, loaded with
    ``AutoModelForSequenceClassification.from_pretrained(pretrained, num_labels=1)``),
    ``config`` (any ``PretrainedConfig`` with a sequence-classification model), or a small
    model built from ``vocab_size`` and the size arguments: ``model_type="gpt2"`` (default,
    ``GPT2ForSequenceClassification``) or ``"bert"`` (``BertForSequenceClassification``).

    Pooling and padding: decoder-style classifiers (GPT-2, Llama, ... -- those with a linear
    ``score`` head) pool the last token whose id differs from ``pad_token_id``; that is wrong
    when pad id == EOS id. For them this class runs the base model with the attention mask,
    applies ``score`` to every position and takes the logit at the last position where the
    mask is 1. Other classifiers (BERT-style, first-token pooling) are called with the
    attention mask directly. Either way padding never changes the score (up to float error).

    Args:
        vocab_size: generator vocabulary size (required unless ``pretrained``/``config``).
        pretrained: path or name for ``from_pretrained``.
        n_layer, n_embd, n_head: size of the config-built model.
        max_length: longest sequence accepted (capped at the model's position limit).
        pad_token_id: id placed at padded positions (and the config's pad id when unset).
        model_type: ``"gpt2"`` or ``"bert"`` for the config-built model.
        config: a ready ``PretrainedConfig``; ``num_labels`` is forced to 1.

    Raises:
        ValueError: no or several sources, unknown ``model_type``, or ``vocab_size`` missing.
    """

    def __init__(
        self,
        vocab_size: Optional[int] = None,
        pretrained: Optional[str] = None,
        n_layer: int = 2,
        n_embd: int = 64,
        n_head: int = 2,
        max_length: int = 128,
        pad_token_id: int = 0,
        model_type: str = "gpt2",
        config=None,
    ) -> None:
        super().__init__()
        from transformers import AutoModelForSequenceClassification

        if pretrained is not None and config is not None:
            raise ValueError("give either pretrained or config, not both")
        if pretrained is not None:
            from gan_writer.models.hub import from_pretrained

            model = from_pretrained(AutoModelForSequenceClassification.from_pretrained, str(pretrained),
                                    "discriminator.pretrained", num_labels=1)
        else:
            if config is None:
                if vocab_size is None:
                    raise ValueError("vocab_size is required when neither pretrained nor config is given")
                from gan_writer.systems.options import check_heads

                check_heads("discriminator", n_embd, n_head)
                config = self._small_config(model_type, vocab_size, n_layer, n_embd, n_head, max_length, pad_token_id)
            config.num_labels = 1
            model = AutoModelForSequenceClassification.from_config(config)
        if model.config.pad_token_id is None:
            model.config.pad_token_id = int(pad_token_id)
        self.model = model
        self.pad_token_id = int(pad_token_id)
        n_pos = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
        self.max_length = int(min(max_length, n_pos)) if n_pos else int(max_length)
        score = getattr(model, "score", None)
        self._pool_last = isinstance(score, nn.Linear)

    @staticmethod
    def _small_config(model_type, vocab_size, n_layer, n_embd, n_head, max_length, pad_token_id):
        kind = model_type.lower()
        if kind == "gpt2":
            from transformers import GPT2Config

            return GPT2Config(
                vocab_size=vocab_size, n_positions=max_length, n_embd=n_embd, n_layer=n_layer,
                n_head=n_head, pad_token_id=pad_token_id, bos_token_id=None, eos_token_id=None, num_labels=1,
            )
        if kind == "bert":
            from transformers import BertConfig

            return BertConfig(
                vocab_size=vocab_size, hidden_size=n_embd, num_hidden_layers=n_layer,
                num_attention_heads=n_head, intermediate_size=4 * n_embd,
                max_position_embeddings=max_length, pad_token_id=pad_token_id, num_labels=1,
            )
        raise ValueError(f"unknown model_type {model_type!r}; expected 'gpt2' or 'bert' (or pass config=)")

    @classmethod
    def from_pretrained(cls, path: str, **kwargs) -> "TransformerDiscriminator":
        """Load a discriminator saved with :meth:`save_pretrained` (or any classification model)."""
        return cls(pretrained=str(path), **kwargs)

    def save_pretrained(self, path: str) -> None:
        """Save the wrapped model (config + weights) to directory ``path``."""
        self.model.save_pretrained(str(path))

    def forward(self, ids: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        """Logit that each sequence is real.

        Args:
            ids: (B, T) token ids in the generator vocabulary.
            attention_mask: (B, T), 1 = real token, 0 = padding; ``None`` means all real.

        Returns:
            (B,) float logits.

        Raises:
            ValueError: bad shapes, or real tokens beyond ``max_length``.
        """
        ids, mask = self._prepare(ids, attention_mask)
        am = mask.long()
        if not self._pool_last:
            return self.model(input_ids=ids, attention_mask=am).logits.squeeze(-1)
        hidden = self.model.base_model(input_ids=ids, attention_mask=am).last_hidden_state  # (B, T, H)
        positions = torch.arange(ids.shape[1], device=ids.device)
        last = (positions * am).argmax(dim=1)  # last real position (0 for an all-padding row)
        pooled = hidden[torch.arange(ids.shape[0], device=ids.device), last]
        return self.model.score(pooled).squeeze(-1)


def build_discriminator(
    kind: str = "cnn", vocab_size: Optional[int] = None, max_length: Optional[int] = None, **kwargs
) -> Discriminator:
    """Build a discriminator by name.

    Args:
        kind: ``"cnn"`` (:class:`CNNDiscriminator`) or ``"transformer"``
            (:class:`TransformerDiscriminator`).
        vocab_size: generator vocabulary size (may be omitted for a pretrained transformer).
        max_length: longest sequence (required for the CNN).
        **kwargs: passed to the constructor.

    Raises:
        ValueError: unknown ``kind``, or missing ``vocab_size``/``max_length`` for the CNN.
    """
    name = str(kind).lower()
    if name == "cnn":
        if vocab_size is None or max_length is None:
            raise ValueError("the cnn discriminator needs vocab_size and max_length")
        return CNNDiscriminator(vocab_size, max_length, **kwargs)
    if name == "transformer":
        if max_length is not None:
            kwargs["max_length"] = max_length
        return TransformerDiscriminator(vocab_size=vocab_size, **kwargs)
    raise ValueError(f"unknown discriminator kind {kind!r}; expected 'cnn' or 'transformer'")
