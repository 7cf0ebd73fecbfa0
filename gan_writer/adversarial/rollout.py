"""Monte Carlo rollout rewards for SeqGAN (Yu et al. 2017, "SeqGAN: Sequence Generative
Adversarial Nets with Policy Gradient", AAAI), written against the generator contract of
:mod:`gan_writer.models.base` only, so every backend (transformer, LSTM, oracle) works.

Pure functions over tensors. Shapes: ``B`` sequences, ``T`` positions, ``R`` rollouts per
prefix, ``V`` vocabulary. A sampled batch ``ids`` ``(B, T)`` never contains BOS: each row is
its tokens, EOS, then padding, and ``attention_mask`` ``(B, T)`` (1 = real token, EOS
included) alone says what is padding (the pad id may equal the EOS id). ``L_b`` below is
the number of real tokens of row ``b``.

Reward of token ``t`` (1-based, ``y_t = ids[:, t-1]``):

* ``t < L_b``: the mean, over ``R`` completions of the prefix ``y_1..y_t`` sampled from the
  rollout policy, of the discriminator's probability that the completed sequence is real;
* ``t = L_b`` (the EOS, or the last position of a row without EOS): the discriminator's
  probability on the sequence itself (nothing is left to sample);
* ``t > L_b`` (padding): 0.

Speed: the decoder state of BOS + ``y_1..y_{T-1}`` (``state``, from :func:`sample_with_state`,
or one :meth:`~gan_writer.models.base.CausalGenerator.encode` pass when the rollout policy is a
delayed copy whose parameters differ from the sampler's) is computed once; the prefix of
length ``t`` is a :meth:`slice_state` of it, never re-encoded. All ``B * R`` completions of a
prefix run as one batch (``repeat_interleave`` layout: rows ``b * R .. b * R + R - 1`` are row
``b``'s rollouts) through :func:`gan_writer.sampling.decode`.

``batching="all_prefixes"`` instead decodes the completions of *every* prefix of every
row together, from BOS: row ``(b, t, r)`` is forced to ``y_1..y_t`` and samples the rest,
so one batch of ``Σ_b (L_b − 1)·R`` rows takes ``T`` sequential model calls instead of about
``T²/2`` (more tokens, far fewer launches: for GPUs). The completions have the same
distribution, so the rewards are equal in distribution (and exactly equal when the
completions are deterministic, e.g. ``top_k=1``).
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import torch
from torch import nn

from gan_writer.models.base import CausalGenerator
from gan_writer.sampling import decode, mask_after_eos

__all__ = [
    "DiscriminatorFn",
    "sample_with_state",
    "mc_rollout_rewards",
    "ROLLOUT_BATCHING",
    "make_rollout_policy",
    "update_rollout_policy",
]

#: how :func:`mc_rollout_rewards` batches its completions (see the module docstring)
ROLLOUT_BATCHING = ("per_prefix", "all_prefixes")

#: ``(ids (N, T) int64, attention_mask (N, T)) -> (N,)`` probability that each sequence is real.
DiscriminatorFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@contextlib.contextmanager
def eval_mode(*modules: Any) -> Iterator[None]:
    """Put the ``nn.Module``\\ s among ``modules`` (or the modules of bound methods) in eval
    mode (dropout off), then restore every submodule's own ``training`` flag."""
    mods = [getattr(mod, "__self__", mod) for mod in modules]  # a bound method's module
    mods = [mod for mod in mods if isinstance(mod, nn.Module)]
    saved = [(m, m.training) for mod in mods for m in mod.modules()]
    for mod in mods:
        mod.eval()
    try:
        yield
    finally:
        for m, flag in saved:
            m.training = flag


def _score(discriminator: Any, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Probabilities of "real" ``(N,)`` float32: ``prob_real`` when the discriminator has it
    (a :class:`gan_writer.models.discriminator.Discriminator`, whose ``forward`` gives
    logits), else the callable's own output, which must already be a probability."""
    fn = getattr(discriminator, "prob_real", None) or discriminator
    out = fn(ids, mask)
    if out.dim() != 1 or out.size(0) != ids.size(0):
        raise ValueError(
            f"the discriminator must return one probability per sequence, shape ({ids.size(0)},); "
            f"got {tuple(out.shape)}"
        )
    return out.float()


@torch.no_grad()
def sample_with_state(
    policy: CausalGenerator,
    n: int,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, Any]:
    """Sample like :meth:`CausalGenerator.sample` and also return the decoder state.

    Draws exactly the same tokens as ``policy.sample(n, max_new_tokens, ...)`` for the same
    random stream (same loop, same draws). Runs the policy in eval mode (no dropout), under
    ``torch.no_grad``.

    Args:
        policy: the generator.
        n: batch size ``B``.
        max_new_tokens: ``T``, tokens drawn per row.
        temperature, top_k, top_p, generator: see :func:`gan_writer.sampling.sample_from_logits`.

    Returns:
        ``(ids, state)``: ``ids`` ``(B, T)`` int64, each row padded with ``pad_token_id`` after
        its EOS; ``state`` holds BOS + ``ids[:, :T'-1]`` where ``T'`` is the number of decode
        steps run (``T``, or fewer when every row ended early; the columns past ``T'`` are
        padding in every row). The last drawn token is never fed. Pass ``state`` to
        :func:`mc_rollout_rewards` with the same ``policy``.
    """
    with eval_mode(policy):
        logits, state = policy.encode(None, batch_size=n)
        return decode(
            policy.step, state, logits, max_new_tokens, eos_token_id=policy.eos_token_id,
            pad_token_id=policy.pad_token_id, temperature=temperature, top_k=top_k, top_p=top_p,
            generator=generator, return_state=True,
        )


@torch.no_grad()
def mc_rollout_rewards(
    policy: CausalGenerator,
    discriminator: DiscriminatorFn,
    ids: torch.Tensor,
    attention_mask: torch.Tensor,
    rollout_num: int,
    *,
    state: Any = None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    max_rollout_batch: int | None = None,
    batching: str = "per_prefix",
) -> torch.Tensor:
    """SeqGAN's Monte Carlo rewards ``Q(y_1..y_{t-1}, y_t)`` for every token of a batch.

    See the module docstring for the definition. Runs under ``torch.no_grad`` with the
    policy and (if it is an ``nn.Module``) the discriminator in eval mode (no dropout); their
    train/eval flags are restored afterwards.

    Args:
        policy: the rollout policy (the current generator, or a delayed copy from
            :func:`make_rollout_policy` / :func:`update_rollout_policy`).
        discriminator: a :class:`~gan_writer.models.discriminator.Discriminator` (its
            ``prob_real`` is used) or any callable ``(ids (N, T), mask (N, T)) -> (N,)``
            returning probabilities of "real".
        ids: ``(B, T)`` int64 sampled tokens (no BOS; EOS then padding).
        attention_mask: ``(B, T)`` 1 for real tokens (EOS included), 0 for padding; rows
            must be right-padded (as :func:`gan_writer.sampling.mask_after_eos` makes them).
        rollout_num: ``R`` >= 1, completions per prefix (SeqGAN: 16).
        state: the decoder state that sampling ``ids`` with this very ``policy`` (same
            parameters) left, holding BOS + ``ids[:, :T-1]`` at least up to the longest
            row (:func:`sample_with_state` returns it). Only sliced and copied, never
            modified. ``None``: built with one ``policy.encode`` pass.
        temperature, top_k, top_p: rollout sampling (SeqGAN: the full distribution).
        generator: ``torch.Generator`` for reproducible completions.
        max_rollout_batch: cap on the rows decoded at once: the ``R`` rollouts run in groups
            of ``max(1, max_rollout_batch // B)`` (so never fewer than ``B`` rows; the
            contract has no row selection). ``None``: all ``B * R`` rows at once. With
            ``all_prefixes``: the cap on the prefix rows decoded together.
        batching: ``per_prefix`` (one decode of ``T − t`` steps per prefix length, reusing
            ``state``) or ``all_prefixes`` (one decode of ``T`` steps for all prefixes; ``state``
            is not used).

    Returns:
        ``(B, T)`` float32 rewards in [0, 1] (for a probability-valued discriminator), 0 at
        padding.

    Raises:
        ValueError: bad shapes, ``rollout_num < 1``, a left-padded mask or unknown ``batching``.
    """
    if batching not in ROLLOUT_BATCHING:
        raise ValueError(f"rollout_batching must be one of {ROLLOUT_BATCHING}, got {batching!r}")
    if ids.dim() != 2 or attention_mask.shape != ids.shape:
        raise ValueError(
            f"ids and attention_mask must both be (B, T); got {tuple(ids.shape)} and {tuple(attention_mask.shape)}"
        )
    if rollout_num < 1:
        raise ValueError(f"rollout_num must be >= 1, got {rollout_num}")
    B, T = ids.shape
    device = ids.device
    mask = attention_mask.to(device) != 0
    lengths = mask.sum(1)  # L_b
    if not torch.equal(mask, torch.arange(T, device=device) < lengths.unsqueeze(1)):
        raise ValueError("attention_mask must be right-padded: 1s first, then 0s")
    rewards = torch.zeros(B, T, dtype=torch.float32, device=device)
    if B == 0 or T == 0:
        return rewards

    with eval_mode(policy, discriminator):
        # token L_b (EOS or the last position): the discriminator on the whole sequence
        nonempty = lengths > 0
        d_full = _score(discriminator, ids, mask.long())
        rows = torch.arange(B, device=device)
        rewards[rows[nonempty], lengths[nonempty] - 1] = d_full[nonempty]

        max_len = int(lengths.max())
        if max_len <= 1:
            return rewards
        fill = _all_prefix_rewards if batching == "all_prefixes" else _per_prefix_rewards
        fill(policy, discriminator, ids.long(), mask, rewards, int(rollout_num), temperature=temperature, top_k=top_k,
             top_p=top_p, generator=generator, max_rows=max_rollout_batch, state=state)
    return rewards


def _per_prefix_rewards(policy, discriminator, ids, mask, rewards, R, *, temperature, top_k, top_p, generator,
                        max_rows, state) -> None:
    """Fill ``rewards[b, t − 1]`` for every ``t < L_b``: for each prefix length ``t``, one step
    from the sliced ``state`` (encoded here when None) and ``R`` completions of ``T − t`` steps,
    decoded in groups of at most ``max(1, max_rows // B)`` rollouts."""
    B, T = ids.shape
    lengths = mask.sum(1)
    max_len = int(lengths.max())
    if state is None:
        _, state = policy.encode(ids[:, : max_len - 1])
    group = R if max_rows is None else max(1, min(R, int(max_rows) // B))
    groups = [group] * (R // group) + ([R % group] if R % group else [])
    eos, pad = policy.eos_token_id, policy.pad_token_id
    rows = torch.arange(B, device=ids.device)
    for t in range(1, max_len):  # prefix y_1..y_t, reward index t - 1
        active = lengths > t  # rows whose y_t is not their last real token
        prefix_state = policy.slice_state(state, length=t)  # BOS + y_1..y_{t-1}
        logits, prefix_state = policy.step(ids[:, t - 1], prefix_state)  # + y_t
        total = torch.zeros(B, dtype=torch.float32, device=ids.device)
        for r in groups:
            s = policy.slice_state(prefix_state, None, repeats=r)
            row_of = rows.repeat_interleave(r)
            completion = decode(
                policy.step, s, logits.repeat_interleave(r, 0), T - t,
                eos_token_id=eos, pad_token_id=pad, temperature=temperature, top_k=top_k,
                top_p=top_p, finished=~active[row_of], generator=generator,
            )
            keep = active[row_of]  # finished rows are not scored (their reward is set above)
            seq = torch.cat([ids[row_of[keep], :t], completion[keep]], dim=1)
            seq_mask = torch.cat([mask[row_of[keep], :t].long(), mask_after_eos(completion[keep], eos)], dim=1)
            total.index_add_(0, row_of[keep], _score(discriminator, seq, seq_mask))
        rewards[active, t - 1] = total[active] / R


def _all_prefix_rewards(policy, discriminator, ids, mask, rewards, R, *, temperature, top_k, top_p, generator,
                        max_rows, state=None) -> None:
    """Fill ``rewards[b, t − 1]`` for every ``t < L_b`` with one forced-prefix decode of all
    prefixes (``state`` is not used: every prefix is decoded from BOS)."""
    from gan_writer.sampling import sample_from_logits

    B, T = ids.shape
    lengths = mask.sum(1)
    b_idx, t_idx = torch.nonzero(torch.arange(1, T, device=ids.device) < lengths.unsqueeze(1), as_tuple=True)
    t_idx = t_idx + 1  # prefix length t in 1..L_b - 1
    b_idx, t_idx = b_idx.repeat_interleave(R), t_idx.repeat_interleave(R)
    total = torch.zeros(B, T, dtype=torch.float32, device=ids.device)
    chunk = b_idx.numel() if max_rows is None else max(1, int(max_rows))
    eos, pad = policy.eos_token_id, policy.pad_token_id
    for start in range(0, b_idx.numel(), chunk):
        rb, rt = b_idx[start:start + chunk], t_idx[start:start + chunk]
        n = rb.numel()
        forced = ids[rb]  # (n, T)
        seq = torch.full((n, T), pad, dtype=torch.long, device=ids.device)
        done = torch.zeros(n, dtype=torch.bool, device=ids.device)
        logits, state = policy.encode(None, batch_size=n)
        for j in range(T):
            drawn = sample_from_logits(logits, temperature, top_k, top_p, generator)
            keep = j < rt  # inside the prefix: the sampled token
            tok = torch.where(keep, forced[:, j], drawn.masked_fill(done, pad))
            seq[:, j] = tok
            if eos is not None:
                done = done | (~keep & (tok == eos))
            if j + 1 == T or bool(done.all()):
                break
            logits, state = policy.step(tok, state)
        total.index_put_((rb, rt - 1), _score(discriminator, seq, mask_after_eos(seq, eos)), accumulate=True)
    active = torch.arange(1, T + 1, device=ids.device) < lengths.unsqueeze(1)
    rewards[active] = total[active] / R


def make_rollout_policy(generator: CausalGenerator) -> CausalGenerator:
    """A frozen deep copy of ``generator`` (eval mode, ``requires_grad=False``) to serve as
    SeqGAN's delayed rollout policy; keep it up to date with :func:`update_rollout_policy`."""
    import copy

    policy = copy.deepcopy(generator).eval()
    for p in policy.parameters():
        p.requires_grad_(False)
    return policy


@torch.no_grad()
def update_rollout_policy(rollout_policy: nn.Module, generator: nn.Module, rate: float = 0.8) -> None:
    """SeqGAN's delayed rollout update, in place: ``θ_roll ← rate·θ_roll + (1 − rate)·θ_gen``.

    As in ``ROLLOUT.update_params`` of the SeqGAN code (LantaoYu/SeqGAN, ``rollout.py``):
    ``rate`` is the share of the *old* rollout parameters kept (0.8 there), and the token
    embeddings are copied from the generator directly rather than mixed. Here "embeddings"
    means the weights of every ``nn.Embedding`` in the module (for GPT-2 the token and the
    position embeddings; GPT-2 ties its output projection to the token embedding, so that
    projection is copied too, whereas the SeqGAN LSTM mixes its separate output layer).
    Buffers (e.g. running statistics, attention masks) are copied. ``rate=0`` makes the
    rollout policy an exact copy of the generator (the paper's rollout policy);
    ``rate=1`` freezes it.

    Note on the reference code: SeqGAN's rollout graph ``gen_x`` is built once in
    ``ROLLOUT.__init__`` from ``tf.identity`` reads of the generator's variables, and
    ``update_params`` only rebinds Python attributes that graph never reads, so the released
    code in effect rolls out with the *current* generator (see LantaoYu/SeqGAN issues #23, #28,
    #29 on the unexplained delay). Rolling out with the current generator is therefore the
    faithful default; this function is the delayed variant the code appears to intend.

    Args:
        rollout_policy: the module updated in place (same architecture as ``generator``).
        generator: the generator being trained (only read).
        rate: in [0, 1].

    Raises:
        ValueError: ``rate`` outside [0, 1] or parameters/buffers whose names or shapes differ.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    embedding_ids = {id(m.weight) for m in rollout_policy.modules() if isinstance(m, nn.Embedding)}
    src_params = dict(generator.named_parameters())
    dst_params = dict(rollout_policy.named_parameters())
    src_buffers = dict(generator.named_buffers())
    dst_buffers = dict(rollout_policy.named_buffers())
    if src_params.keys() != dst_params.keys() or src_buffers.keys() != dst_buffers.keys():
        raise ValueError("rollout_policy and generator have different parameter/buffer names")
    for name, dst in dst_params.items():
        src = src_params[name]
        if src.shape != dst.shape:
            raise ValueError(f"parameter {name}: shape {tuple(dst.shape)} != generator's {tuple(src.shape)}")
        if id(dst) in embedding_ids:
            dst.copy_(src)
        else:
            dst.mul_(rate).add_(src.to(dst.dtype), alpha=1.0 - rate)
    for name, dst in dst_buffers.items():
        src = src_buffers[name]
        if src.shape != dst.shape:
            raise ValueError(f"buffer {name}: shape {tuple(dst.shape)} != generator's {tuple(src.shape)}")
        dst.copy_(src)
