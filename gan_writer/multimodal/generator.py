"""Image-conditioned generator: image features mapped to ``k`` prefix embeddings of a causal LM.

ClipCap (Mokady et al. 2021, "ClipCap: CLIP Prefix for Image Captioning"): a mapping network
turns the (frozen) image encoder's features into ``k`` vectors in the language model's input
embedding space; the LM reads them before BOS and is trained by MLE on image–text pairs,
frozen (only the mapper learns, ClipCap's "frozen GPT-2" setting) or fine-tuned.

:class:`ImagePrefixGenerator` holds the LM and the mapper; it is *not* a usable generator
until an image is bound: ``conditioned = gen.condition(features)`` returns a
:class:`ConditionedGenerator`, a full :class:`~gan_writer.models.base.CausalGenerator` whose
``encode`` feeds the prefix embeddings then BOS, so the project's sampling, rollouts and
constrained decoding work on it unchanged. Its decoder state (the KV cache) holds ``k``
prefix positions before BOS; ``slice_state`` lengths count from BOS as the contract says.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from transformers import DynamicCache

from gan_writer.models.base import CausalGenerator
from gan_writer.models.generator import Generator

MAPPERS = ("mlp", "transformer")
FEATURES = ("pooled", "patch")


class ImageConditioningRequired(ValueError):
    """An image-conditioned generator was used without an image."""


@dataclass
class PrefixConfig:
    """The mapping network; the ``model.prefix`` block of ``experiments/image_poem/*.yaml``.

    Attributes:
        prefix_length: ``k`` prefix embeddings (ClipCap: 10).
        mapper: ``mlp`` (ClipCap's MLP, ``H → k·E/2 → k·E`` with tanh) or ``transformer``
            (ClipCap's transformer mapper: ``k`` learned queries read the image tokens).
        feature: ``pooled`` (one ``(H,)`` vector per image) or ``patch`` (``(N, H)`` patch
            tokens; ``transformer`` mapper only).
        hidden_dim: MLP hidden size (None: ``k·E/2`` as in ClipCap).
        num_layers, num_heads: transformer mapper size (ClipCap: 8 layers, 8 heads).
        dropout: dropout inside the mapper.
    """

    prefix_length: int = 10
    mapper: str = "mlp"
    feature: str = "pooled"
    hidden_dim: int | None = None
    num_layers: int = 2
    num_heads: int = 4
    dropout: float = 0.0

    def check(self) -> None:
        """Raises ValueError naming the ``model.prefix`` key that is wrong."""
        if self.prefix_length < 1:
            raise ValueError(f"model.prefix.prefix_length must be >= 1, got {self.prefix_length}")
        if self.mapper not in MAPPERS:
            raise ValueError(f"model.prefix.mapper must be one of {MAPPERS}, got {self.mapper!r}")
        if self.feature not in FEATURES:
            raise ValueError(f"model.prefix.feature must be one of {FEATURES}, got {self.feature!r}")
        if self.mapper == "mlp" and self.feature != "pooled":
            raise ValueError("model.prefix.feature=patch needs model.prefix.mapper=transformer")


class PrefixMapper(nn.Module):
    """Image features → ``k`` prefix embeddings ``(B, k, E)`` (ClipCap's two mappers).

    Args:
        feature_dim: ``H`` of the image features.
        embed_dim: ``E``, the LM's input embedding size.
        config: :class:`PrefixConfig`.
    """

    def __init__(self, feature_dim: int, embed_dim: int, config: PrefixConfig) -> None:
        super().__init__()
        config.check()
        self.config, self.k, self.embed_dim = config, config.prefix_length, embed_dim
        kE = self.k * embed_dim
        if config.mapper == "mlp":
            hidden = config.hidden_dim or max(1, kE // 2)
            self.net = nn.Sequential(nn.Linear(feature_dim, hidden), nn.Tanh(), nn.Dropout(config.dropout), nn.Linear(hidden, kE))
            return
        if embed_dim % config.num_heads:
            raise ValueError(f"model.prefix.num_heads={config.num_heads} must divide the LM embedding size {embed_dim}")
        # pooled: one vector expanded into k image tokens (ClipCap); patch: one token per patch
        self.project = nn.Linear(feature_dim, kE if config.feature == "pooled" else embed_dim)
        self.queries = nn.Parameter(torch.randn(self.k, embed_dim) * embed_dim ** -0.5)
        layer = nn.TransformerEncoderLayer(
            embed_dim, config.num_heads, 4 * embed_dim, config.dropout, batch_first=True, norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, H)`` pooled or ``(B, N, H)`` patch features → ``(B, k, E)``."""
        B = features.size(0)
        if self.config.mapper == "mlp":
            return self.net(features).view(B, self.k, self.embed_dim)
        tokens = self.project(features)
        if self.config.feature == "pooled":
            tokens = tokens.view(B, self.k, self.embed_dim)
        x = torch.cat([tokens, self.queries.unsqueeze(0).expand(B, -1, -1)], dim=1)
        return self.transformer(x)[:, -self.k:]


class ImagePrefixGenerator(CausalGenerator):
    """A transformer LM plus a :class:`PrefixMapper`; bind an image with :meth:`condition`.

    Its own contract methods raise :class:`ImageConditioningRequired` (so ``gan-writer
    generate`` on such a checkpoint says what to do instead of sampling garbage).

    Args:
        lm: a :class:`~gan_writer.models.generator.Generator` (any HF causal LM).
        feature_dim: ``H`` of the image encoder's features.
        prefix: the mapping network's :class:`PrefixConfig`.
        encoder: the encoder's identity (:func:`gan_writer.multimodal.encoder.encoder_identity`),
            saved in :meth:`spec`.
        freeze_lm: keep the LM's weights fixed (only the mapper trains).

    Raises:
        ValueError: ``lm`` is not a transformer generator, or a bad ``prefix``.
    """

    def __init__(
        self, lm: CausalGenerator, feature_dim: int, prefix: PrefixConfig, encoder: dict | None = None,
        freeze_lm: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(lm, Generator):
            raise ValueError(
                f"image conditioning needs a transformer generator (input embeddings), got {type(lm).__name__}: "
                "set model.generator.backend=transformer"
            )
        self.lm, self.prefix_config, self.encoder_identity = lm, prefix, dict(encoder or {})
        self.feature_dim, self.freeze_lm = int(feature_dim), bool(freeze_lm)
        self.mapper = PrefixMapper(self.feature_dim, lm.model.get_input_embeddings().weight.size(1), prefix)
        self.vocab_size, self.bos_token_id = lm.vocab_size, lm.bos_token_id
        self.eos_token_id, self.pad_token_id = lm.eos_token_id, lm.pad_token_id
        self.set_freeze_lm(self.freeze_lm)

    def train(self, mode: bool = True) -> "ImagePrefixGenerator":
        """As ``nn.Module.train``, but a frozen LM stays in eval mode (no dropout; ClipCap)."""
        super().train(mode)
        if self.freeze_lm:
            self.lm.eval()
        return self

    def set_freeze_lm(self, freeze: bool) -> None:
        """Freeze (only the mapper trains) or unfreeze the LM."""
        self.freeze_lm = bool(freeze)
        self.lm.requires_grad_(not self.freeze_lm)
        self.train(self.training)

    @property
    def prefix_length(self) -> int:
        return self.prefix_config.prefix_length

    @property
    def max_positions(self) -> int | None:
        n = self.lm.max_positions
        return None if n is None else n - self.prefix_length

    def spec(self) -> dict:
        return {
            "backend": "image_prefix", "lm": self.lm.spec(), "feature_dim": self.feature_dim,
            "prefix": asdict(self.prefix_config), "encoder": self.encoder_identity, "freeze_lm": self.freeze_lm,
        }

    @classmethod
    def from_spec(cls, spec: dict) -> "ImagePrefixGenerator":
        """Rebuild (untrained weights) from :meth:`spec`; load the state dict afterwards."""
        lm = Generator.from_spec(spec["lm"])
        return cls(lm, spec["feature_dim"], PrefixConfig(**spec["prefix"]), spec.get("encoder"), spec.get("freeze_lm", True))

    def condition(self, features: torch.Tensor) -> "ConditionedGenerator":
        """Bind images: a :class:`ConditionedGenerator` for ``features``.

        Args:
            features: ``(B_img, H)`` pooled or ``(B_img, N, H)`` patch features (as
                ``prefix.feature`` says) from :class:`~gan_writer.multimodal.encoder.ImageEncoder`.
                ``B_img = 1`` serves any batch size; otherwise row ``b`` uses image ``b``.

        Raises:
            ValueError: wrong rank or feature size.
        """
        want = 2 if self.prefix_config.feature == "pooled" else 3
        if features.dim() != want or features.size(-1) != self.feature_dim:
            shape = "(B, H)" if want == 2 else "(B, N, H)"
            raise ValueError(
                f"this generator takes {self.prefix_config.feature} image features {shape} with H={self.feature_dim}, "
                f"got {tuple(features.shape)}: encode the image with the encoder it was trained with"
            )
        return ConditionedGenerator(self, features)

    def _unbound(self, *args, **kwargs):
        raise ImageConditioningRequired(
            "this generator is image-conditioned: bind an image first (generator.condition(features), or "
            "gan_writer.multimodal.load_for_image(ckpt, image, encoder_dir); on the command line "
            "`gan-writer image-poem --ckpt X --image PHOTO --image-encoder DIR`)"
        )

    logits = encode = step = slice_state = _unbound


class ConditionedGenerator(CausalGenerator):
    """An :class:`ImagePrefixGenerator` with images bound: the full generator contract.

    Shares the parent's modules (gradients of :meth:`logits` / :meth:`log_probs` reach the
    mapper and, if not frozen, the LM). The state after :meth:`encode` holds ``k`` prefix
    positions, then BOS and the prefix ids; :meth:`slice_state` ``length`` counts from BOS.
    """

    def __init__(self, parent: ImagePrefixGenerator, features: torch.Tensor) -> None:
        super().__init__()
        self.parent = parent
        self.features = features.detach()
        self.vocab_size, self.bos_token_id = parent.vocab_size, parent.bos_token_id
        self.eos_token_id, self.pad_token_id = parent.eos_token_id, parent.pad_token_id

    @property
    def max_positions(self) -> int | None:
        return self.parent.max_positions

    def spec(self) -> dict:
        return self.parent.spec()

    def _inputs(self, ids: torch.Tensor | None, n: int) -> torch.Tensor:
        """``(n, k + 1 + L, E)``: prefix embeddings, BOS, ``ids`` embedded."""
        lm, B = self.parent.lm, self.features.size(0)
        if B not in (1, n):
            raise ValueError(f"the generator is bound to {B} images but got {n} rows: bind one image or one per row")
        prefix = self.parent.mapper(self.features.to(self.device))
        prefix = prefix.expand(n, -1, -1) if B == 1 else prefix
        tokens = lm.model.get_input_embeddings()(lm._with_bos(ids, n))
        return torch.cat([prefix.to(tokens.dtype), tokens], dim=1)

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T) -> (B, T, V)``: teacher-forced logits over prefix + BOS + ``ids[:, :-1]``."""
        x = self._inputs(ids[:, :-1], ids.size(0))
        mask = torch.ones(x.shape[:2], dtype=torch.long, device=x.device)
        out = self.parent.lm.model(inputs_embeds=x, attention_mask=mask, use_cache=False)
        return out.logits[:, self.parent.prefix_length:]

    def encode(self, ids: torch.Tensor | None, batch_size: int | None = None) -> tuple[torch.Tensor, Any]:
        n = ids.size(0) if ids is not None else batch_size
        x = self._inputs(ids, n)
        model = self.parent.lm.model
        mask = torch.ones(x.shape[:2], dtype=torch.long, device=x.device)
        out = model(inputs_embeds=x, attention_mask=mask, cache=DynamicCache(config=model.config), use_cache=True)
        return out.logits[:, -1], out.cache

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        return self.parent.lm.step(tokens, state)

    def slice_state(self, state: Any, length: int | None = None, repeats: int = 1) -> Any:
        k = self.parent.prefix_length
        return self.parent.lm.slice_state(state, None if length is None else k + length, repeats)
