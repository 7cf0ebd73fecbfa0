"""AdaLoRA's rank-allocator state in a checkpoint, so an interrupted AdaLoRA run resumes exactly.

AdaLoRA (Zhang et al. 2023; peft 0.21's ``RankAllocator``) keeps, outside the weights and the
optimizer, exponential moving averages of each adapter parameter's importance (``ipt``,
``exp_avg_ipt``, ``exp_avg_unc``), the rank pattern it last allocated (which singular values
survive) and, in the adversarial stage, the count of generator steps. Without them a resumed
run restarts the averages at zero and prunes other ranks than the straight run would.

They are stored under the checkpoint key :data:`ADALORA_KEY` as plain tensors, ints and
dicts (``torch.load(weights_only=True)`` reads them); the rank pattern as boolean tensors.
"""
from __future__ import annotations

from typing import Any

import torch

ADALORA_KEY = "gan_writer_adalora"
_AVERAGES = ("ipt", "exp_avg_ipt", "exp_avg_unc")


def _tuner(generator: Any):
    """The peft ``AdaLoraModel`` of an AdaLoRA generator, else None."""
    info = getattr(generator, "adapter", None)
    if info is not None and info.options.method == "adalora":
        return generator.model.base_model
    return None


def adalora_state(generator: Any) -> dict | None:
    """The allocator state of an AdaLoRA ``generator`` (None for any other generator).

    Returns:
        ``{"steps": int, "ipt" | "exp_avg_ipt" | "exp_avg_unc": {param name: tensor},
        "rank_pattern": {module name: bool tensor (r,)} or None}``; the parameter names are
        those of ``AdaLoraModel.model.named_parameters()``, as peft keys them. Tensors are
        detached CPU copies.
    """
    tuner = _tuner(generator)
    if tuner is None:
        return None
    alloc = tuner.rankallocator
    state: dict[str, Any] = {"steps": int(generator.adapter.steps)}
    for name in _AVERAGES:
        state[name] = {k: v.detach().cpu().clone() for k, v in getattr(alloc, name).items()}
    pattern = tuner.peft_config[tuner.trainable_adapter_name].rank_pattern
    state["rank_pattern"] = None if not pattern else {k: torch.tensor(v, dtype=torch.bool) for k, v in pattern.items()}
    return state


def load_adalora_state(generator: Any, state: dict | None, where: str = "the checkpoint") -> None:
    """Put :func:`adalora_state`'s ``state`` back into an AdaLoRA ``generator``.

    A ``state`` of None with an AdaLoRA generator (a checkpoint written before the state was
    saved) leaves the allocator fresh, as before; a state for a generator without AdaLoRA is
    ignored.

    Raises:
        ValueError: naming ``where``, when the state's parameter names are not this
            generator's adapter parameters (another ``target_modules`` or ``init_r``).
    """
    tuner = _tuner(generator)
    if tuner is None or state is None:
        return
    params = dict(tuner.model.named_parameters())
    device = next(iter(params.values())).device
    unknown = sorted(set().union(*(state[n] for n in _AVERAGES)) - set(params))
    if unknown:
        raise ValueError(
            f"{where}: its AdaLoRA state names parameters this generator does not have ({unknown[0]}, ...): "
            "resume with the checkpoint's own model.generator.peft settings"
        )
    alloc = tuner.rankallocator
    for name in _AVERAGES:
        setattr(alloc, name, {k: v.to(device) for k, v in state[name].items()})
    pattern = state.get("rank_pattern")
    config = tuner.peft_config[tuner.trainable_adapter_name]
    config.rank_pattern = None if pattern is None else {k: v.tolist() for k, v in pattern.items()}
    generator.adapter.steps = int(state["steps"])
