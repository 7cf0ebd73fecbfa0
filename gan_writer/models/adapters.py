"""Parameter-efficient fine-tuning of a pretrained generator with the ``peft`` library.

Methods (``generator.peft.method`` in the YAML): ``lora`` (Hu et al. 2021), ``ia3``
(Liu et al. 2022), ``prefix`` (prefix tuning, Li & Liang 2021) and ``adalora`` (Zhang et al.
2023). The base model stays frozen and bit-identical; only the adapter trains, and
checkpoints store only the adapter plus the base's *identity* (name, path, size, sha256),
checked when the checkpoint is loaded.

The adversarial stage never copies the base: its KL reference is the base with the
adapter disabled while the adapter is fresh, or a frozen copy of the trained adapter (a
second peft adapter, the rule TRL follows); SeqGAN's delayed rollout policy is a further
adapter mixed with ``rollout_update_rate`` (:func:`update_rollout`). Prefix tuning puts its
virtual tokens in the KV cache: :func:`num_virtual_tokens` tells the generator how many, so
the project's own decode and rollouts that slice the state keep working.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

from gan_writer.models.base import CausalGenerator
from gan_writer.models.pretrained_base import check_base

METHODS = ("lora", "ia3", "prefix", "adalora")
TRAINED = "default"  # the trained adapter's peft name
FROZEN_COPIES = ("reference", "rollout")  # adversarial-stage adapters; not part of the generator


@dataclass
class PeftOptions:
    """The ``model.generator.peft`` block: which adapter and its sizes.

    Attributes:
        method: ``lora``, ``ia3``, ``prefix`` or ``adalora``.
        r: LoRA rank (AdaLoRA: the target average rank ``target_r``).
        alpha: LoRA scaling ``lora_alpha`` (update scaled by ``alpha / r``).
        dropout: LoRA dropout on the adapter input.
        target_modules: ``auto`` (peft's default modules per architecture) or module names.
        num_virtual_tokens: prefix tuning's prefix length ``P`` (tokens in every layer's cache).
        init_r: AdaLoRA's starting rank (default ``2 * r``).
        tinit, tfinal, deltaT: AdaLoRA schedule: warm-up steps without pruning, final steps
            at the target budget, steps between rank re-allocations.
        total_step: AdaLoRA's total steps; None takes the trainer's ``estimated_stepping_batches``.
        orth_reg_weight: AdaLoRA's orthogonal-regulariser weight (added by :func:`adapter_regulariser`).
    """

    method: str = "lora"
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: str | list[str] = "auto"
    num_virtual_tokens: int = 16
    init_r: int | None = None
    tinit: int = 0
    tfinal: int = 0
    deltaT: int = 1
    total_step: int | None = None
    orth_reg_weight: float = 0.5

    def to_dict(self) -> dict:
        return asdict(self)


def peft_config(options: PeftOptions, inference_mode: bool = False):
    """The ``peft`` config object for ``options`` (task ``CAUSAL_LM``).

    Raises:
        ValueError: naming ``model.generator.peft.method`` if the method is unknown.
    """
    import peft

    if options.method not in METHODS:
        raise ValueError(f"model.generator.peft.method must be one of {METHODS}, got {options.method!r}")
    targets = None if options.target_modules in ("auto", None) else list(options.target_modules)
    common = dict(task_type="CAUSAL_LM", inference_mode=inference_mode)
    if options.method == "lora":
        return peft.LoraConfig(r=options.r, lora_alpha=options.alpha, lora_dropout=options.dropout,
                               target_modules=targets, **common)
    if options.method == "ia3":
        return peft.IA3Config(target_modules=targets, **common)
    if options.method == "prefix":
        return peft.PrefixTuningConfig(num_virtual_tokens=options.num_virtual_tokens, **common)
    total = options.total_step or (options.tinit + options.tfinal + 1)  # set from the trainer later
    return peft.AdaLoraConfig(
        target_r=options.r, init_r=options.init_r or 2 * options.r, lora_alpha=options.alpha,
        lora_dropout=options.dropout, target_modules=targets, tinit=options.tinit, tfinal=options.tfinal,
        deltaT=options.deltaT, total_step=total, orth_reg_weight=options.orth_reg_weight, **common,
    )


# ---- applying and inspecting the adapter -------------------------------------------------
@dataclass
class AdapterInfo:
    """What a generator carries about its adapter (saved in its spec)."""

    options: PeftOptions
    base: dict
    trained: bool = False  # False for a fresh adapter; True once loaded from a checkpoint
    steps: int = 0  # generator steps counted by after_backward when no step is given
    extra: list[str] = field(default_factory=list)  # frozen copies added (reference, rollout)


def apply_adapter(generator, options: PeftOptions, base: dict, gradient_checkpointing: bool = False):
    """Wrap ``generator.model`` with a fresh peft adapter; the base is frozen.

    Args:
        generator: a :class:`~gan_writer.models.generator.Generator` of a pretrained model.
        options: the adapter.
        base: :func:`~gan_writer.models.pretrained_base.base_identity` of the model the generator was loaded from.
        gradient_checkpointing: recompute activations in backward (refused with prefix tuning).

    Raises:
        ValueError: gradient checkpointing with prefix tuning.
    """
    import peft

    if gradient_checkpointing:
        if options.method == "prefix":
            raise ValueError(
                "model.generator.gradient_checkpointing cannot be used with peft.method: prefix (the prefix lives in "
                "the KV cache, which checkpointed layers do not keep): turn one of them off"
            )
        generator.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    generator.model = peft.get_peft_model(generator.model, peft_config(options))
    generator.adapter = AdapterInfo(options, base)
    return generator


def has_adapter(generator: Any) -> bool:
    return getattr(generator, "adapter", None) is not None


def num_virtual_tokens(generator: Any) -> int:
    """Prefix tuning's virtual tokens in the active adapter's cache (0 otherwise or disabled)."""
    if not has_adapter(generator) or getattr(generator.model, "_adapters_disabled", False):
        return 0
    cfg = generator.model.active_peft_config
    return int(cfg.num_virtual_tokens) if cfg.peft_type.value == "PREFIX_TUNING" else 0


def trainable_parameters(module: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (shared tensors counted once)."""
    seen: dict[int, nn.Parameter] = {id(p): p for p in module.parameters()}
    total = sum(p.numel() for p in seen.values())
    return sum(p.numel() for p in seen.values() if p.requires_grad), total


def _is_adapter_name(name: str, adapters: set[str]) -> bool:
    return any(part in adapters for part in name.split("."))


def base_tensor_ptrs(generator: Any) -> set[int]:
    """Storage addresses of the frozen base's parameters and buffers (empty without adapter)."""
    if not has_adapter(generator):
        return set()
    names = set(generator.model.peft_config)
    tensors = [*generator.model.named_parameters(), *generator.model.named_buffers()]
    return {t.data_ptr() for n, t in tensors if not _is_adapter_name(n, names)}


def drop_base_weights(generators: list[Any], state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state_dict`` without the base weights of the adapter ``generators`` (what checkpoints keep)."""
    ptrs = set().union(*(base_tensor_ptrs(g) for g in generators))
    return {k: v for k, v in state_dict.items() if v.data_ptr() not in ptrs} if ptrs else state_dict


def load_generator_state(generator: Any, state: dict[str, torch.Tensor]) -> None:
    """Load a generator state dict; for an adapter generator only the adapter is stored, so
    every missing key must be a base weight.

    Raises:
        ValueError: an adapter key is missing or an unexpected key is present.
    """
    if not has_adapter(generator):
        generator.load_state_dict(state)
        return
    state = {k: v for k, v in state.items() if not _is_adapter_name(k, set(FROZEN_COPIES))}
    missing, unexpected = generator.load_state_dict(state, strict=False)
    names = set(generator.model.peft_config)
    bad = [k for k in missing if _is_adapter_name(k, names)] + list(unexpected)
    if bad:
        raise ValueError(f"the checkpoint's adapter does not match its spec (keys {bad[:4]}...)")
    generator.adapter.trained = True


def generator_from_spec(spec: dict):
    """Rebuild an adapter generator: load the checked base, then add a fresh adapter."""
    from gan_writer.models.generator import Generator

    directory, gguf = check_base(spec["base"])
    gen = Generator.from_pretrained(directory, gguf, spec["bos_token_id"], spec["eos_token_id"], spec["pad_token_id"])
    return apply_adapter(gen, PeftOptions(**spec["peft"]), spec["base"])


# ---- policies built from adapters (adversarial stage) -------------------------------------
def _swap(name: str, src: str, dst: str) -> str:
    return ".".join(dst if part == src else part for part in name.split("."))


def add_frozen_copy(generator: Any, name: str) -> None:
    """Add peft adapter ``name``, frozen, holding a copy of the trained adapter's weights."""
    model = generator.model
    model.add_adapter(name, peft_config(generator.adapter.options, inference_mode=True))
    model.set_adapter(TRAINED)
    copy_adapter(generator, TRAINED, name, rate=0.0)
    for n, p in model.named_parameters():
        if name in n.split("."):
            p.requires_grad_(False)
    generator.adapter.extra.append(name)


@torch.no_grad()
def copy_adapter(generator: Any, src: str, dst: str, rate: float = 0.0) -> None:
    """``θ_dst ← rate·θ_dst + (1 − rate)·θ_src`` over the adapter parameters (in place).

    Raises:
        ValueError: ``rate`` outside [0, 1].
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    params = dict(generator.model.named_parameters())
    for n, p in params.items():
        if src in n.split("."):
            q = params[_swap(n, src, dst)]
            q.mul_(rate).add_(p.detach(), alpha=1.0 - rate)


@contextlib.contextmanager
def active_adapter(generator: Any, name: str | None) -> Iterator[None]:
    """Run with adapter ``name`` active (None: adapter disabled, the base alone); the
    trained adapter and every ``requires_grad`` flag are restored afterwards."""
    model = generator.model
    if name is None:
        with model.disable_adapter():
            yield
        return
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.set_adapter(name)
    try:
        yield
    finally:
        model.set_adapter(TRAINED)
        for p, flag in flags:
            p.requires_grad_(flag)


class AdapterPolicy(CausalGenerator):
    """The generator run with another adapter (or none): a policy sharing the frozen base.

    Args:
        generator: the adapter generator (registered as a submodule; its base is not copied).
        adapter: peft adapter name, or None for the base with the adapter disabled.
    """

    def __init__(self, generator: Any, adapter: str | None) -> None:
        super().__init__()
        self.generator, self.adapter_name = generator, adapter
        for key in ("vocab_size", "bos_token_id", "eos_token_id", "pad_token_id"):
            setattr(self, key, getattr(generator, key))

    @property
    def max_positions(self) -> int | None:
        with active_adapter(self.generator, self.adapter_name):
            return self.generator.max_positions

    def logits(self, ids, attention_mask=None):
        with active_adapter(self.generator, self.adapter_name):
            return self.generator.logits(ids, attention_mask)

    def encode(self, ids, batch_size=None):
        with active_adapter(self.generator, self.adapter_name):
            return self.generator.encode(ids, batch_size)

    def step(self, tokens, state):
        with active_adapter(self.generator, self.adapter_name):
            return self.generator.step(tokens, state)

    def slice_state(self, state, length=None, repeats=1):
        with active_adapter(self.generator, self.adapter_name):
            return self.generator.slice_state(state, length, repeats)

    def spec(self) -> dict:
        return self.generator.spec()


def reference_policy(generator: Any) -> CausalGenerator:
    """The frozen KL reference: a deep copy for a plain generator; for an adapter generator
    the base with the adapter disabled (fresh adapter) or a frozen copy of the trained one."""
    if not has_adapter(generator):
        from gan_writer.adversarial.rollout import make_rollout_policy

        return make_rollout_policy(generator)
    if not generator.adapter.trained:
        return AdapterPolicy(generator, None)
    add_frozen_copy(generator, "reference")
    return AdapterPolicy(generator, "reference")


def rollout_policy(generator: Any) -> CausalGenerator:
    """SeqGAN's delayed rollout policy: a frozen deep copy, or a second (frozen) adapter."""
    if not has_adapter(generator):
        from gan_writer.adversarial.rollout import make_rollout_policy

        return make_rollout_policy(generator)
    add_frozen_copy(generator, "rollout")
    return AdapterPolicy(generator, "rollout")


def update_rollout(policy: nn.Module, generator: Any, rate: float) -> None:
    """``θ_roll ← rate·θ_roll + (1 − rate)·θ_gen``: over the adapters for an
    :class:`AdapterPolicy`, else :func:`gan_writer.adversarial.rollout.update_rollout_policy`."""
    if isinstance(policy, AdapterPolicy):
        copy_adapter(generator, TRAINED, policy.adapter_name, rate)
        return
    from gan_writer.adversarial.rollout import update_rollout_policy

    update_rollout_policy(policy, generator, rate)


# ---- AdaLoRA hooks -------------------------------------------------------------------------
def _adalora(generator: Any):
    if has_adapter(generator) and generator.adapter.options.method == "adalora":
        return generator.model.base_model
    return None


def adapter_regulariser(generator: Any) -> torch.Tensor | float:
    """AdaLoRA's orthogonal regulariser ``w · mean ‖PPᵀ − I‖_F`` over its ``lora_A``/``lora_B``
    (as ``AdaLoraModel.forward`` adds it when labels are passed; peft 0.21); 0.0 otherwise."""
    if _adalora(generator) is None:
        return 0.0
    terms = []
    for n, p in generator.model.named_parameters():
        parts = n.split(".")
        if TRAINED in parts and ("lora_A" in parts or "lora_B" in parts) and p.numel():
            cov = p @ p.T if "lora_A" in parts else p.T @ p
            terms.append(torch.linalg.matrix_norm(cov - torch.eye(cov.size(0), dtype=cov.dtype, device=cov.device)))
    weight = generator.adapter.options.orth_reg_weight
    return weight * torch.stack(terms).mean() if terms else 0.0


def after_backward(generator: Any, step: int | None = None) -> None:
    """AdaLoRA's ``update_and_allocate(step)`` (importance scores and rank budget); call after
    the optimizer step while the gradients are still there. No-op for other adapters.

    Args:
        step: the generator step; None counts this generator's calls (the adversarial stage,
            whose ``global_step`` also counts discriminator steps). The count, AdaLoRA's
            importance averages and its rank pattern are checkpointed
            (:mod:`gan_writer.models.adalora_state`), so a resumed run continues them.
    """
    tuner = _adalora(generator)
    if tuner is not None:
        if step is None:
            step = generator.adapter.steps
        tuner.update_and_allocate(int(step))
        generator.adapter.steps = int(step) + 1


def set_total_step(generator: Any, trainer: Any) -> None:
    """Give AdaLoRA the run's total steps (``trainer.estimated_stepping_batches``) when
    ``peft.total_step`` was not set; no-op otherwise (the trainer is not asked).

    Raises:
        ValueError: an unbounded run (no ``max_steps``/``max_epochs``) or ``tinit + tfinal``
            leaving no step for pruning.
    """
    tuner = _adalora(generator)
    if tuner is None or generator.adapter.options.total_step:
        return
    total = trainer.estimated_stepping_batches
    if total == float("inf"):
        raise ValueError("model.generator.peft: AdaLoRA needs total_step: set it, or trainer.max_steps / max_epochs")
    total, opts = int(total), generator.adapter.options
    if opts.tinit >= total - opts.tfinal:
        raise ValueError(
            f"model.generator.peft: AdaLoRA needs tinit ({opts.tinit}) < total_step ({total}) - tfinal "
            f"({opts.tfinal}); lower tinit/tfinal or train longer"
        )
    tuner.peft_config[TRAINED].total_step = total
    tuner.rankallocator.peft_config.total_step = total


def adapter_ranks(generator: Any) -> list[int]:
    """AdaLoRA: the rank each adapted layer keeps (its ``rank_pattern`` once allocated, else ``init_r``)."""
    cfg = generator.model.peft_config[TRAINED]
    if cfg.rank_pattern:
        return [int(sum(mask)) for _, mask in sorted(cfg.rank_pattern.items())]
    return [cfg.init_r for n, _ in generator.model.named_parameters()
            if "lora_E" in n.split(".") and TRAINED in n.split(".")]


def _describe_base(base: dict | None) -> str:
    """A base model's identity for an error message: ``base`` is a ``generator_spec["base"]`` or None."""
    return "no adapter (all weights)" if base is None else f"an adapter on {base['name']} (sha256 {base['sha256'][:12]})"


def fill_base_weights(module: nn.Module, generator: Any, checkpoint: dict) -> None:
    """Before resuming (``--ckpt_path``) an adapter run: check the checkpoint's base is this
    run's base, then put this run's base weights into ``checkpoint["state_dict"]`` so the
    LightningModule loads strictly.

    Raises:
        ValueError: the checkpoint's adapter was trained on another base, or it is an
            adapter checkpoint and this run has no adapter (or the reverse).
    """
    spec = (checkpoint.get("gan_writer") or {}).get("generator_spec") or {}
    theirs, mine = spec.get("base"), generator.adapter.base if has_adapter(generator) else None
    if theirs is None and mine is None:
        return
    if theirs is None or mine is None or theirs["sha256"] != mine["sha256"]:
        raise ValueError(
            f"cannot resume: the checkpoint holds {_describe_base(theirs)} but this run builds {_describe_base(mine)}; "
            "use the checkpoint's own model.generator settings"
        )
    ptrs = base_tensor_ptrs(generator)
    state = checkpoint["state_dict"]
    for key, value in module.state_dict().items():
        if key not in state and value.data_ptr() in ptrs:
            state[key] = value
