"""Monte Carlo rollout rewards (gan_writer.adversarial.rollout): reward layout, EOS and padding,
cache reuse (no prefix re-encoding), grouping, and the delayed rollout policy."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan_writer.adversarial import (
    make_rollout_policy,
    mc_rollout_rewards,
    sample_with_state,
    update_rollout_policy,
)
from gan_writer.models import CausalGenerator, Generator
from gan_writer.models.discriminator import CNNDiscriminator
from gan_writer.sampling import mask_after_eos
from helpers import unique_probability
import helpers

# The fake policy draws completion tokens from a bucket of WIDTH ids that is a hash of the
# whole history it was fed, so a completion shows which prefix it was conditioned on.
ROLL_LO, N_BUCKETS, WIDTH = 32, 200, 4
ROLL_HI = ROLL_LO + N_BUCKETS * WIDTH  # completion tokens: [ROLL_LO, ROLL_HI); sampled rows use 1..31
V, BOS, EOS, PAD = ROLL_HI + 1, ROLL_HI, 0, 0  # pad == EOS on purpose: masks, not ids, define padding


class FakePolicy(CausalGenerator):
    """A contract-only backend whose state is the tensor of fed tokens ``(N, L)``.

    ``deterministic=False``: uniform over the WIDTH tokens of the history's bucket (plus EOS
    with ``p_eos``), so the ``R`` rollouts of a prefix differ, every completion token tells it
    is a completion, and it can be checked against the prefix it was appended to.
    ``deterministic=True``: the bucket's first token only (identical rollouts).
    Records the calls it receives.
    """

    def __init__(self, p_eos: float = 0.0, deterministic: bool = False) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))
        self.vocab_size, self.bos_token_id, self.eos_token_id, self.pad_token_id = V, BOS, EOS, PAD
        self.p_eos, self.deterministic = p_eos, deterministic
        self.encode_lengths: list[int] = []
        self.step_rows: list[int] = []

    @staticmethod
    def bucket(hist: torch.Tensor) -> torch.Tensor:
        weights = torch.arange(1, hist.size(1) + 1) * 7919
        return ((hist.long() * weights).sum(1) * 2654435761 // 1024) % N_BUCKETS

    def _next(self, hist: torch.Tensor) -> torch.Tensor:
        logits = torch.full((hist.size(0), V), float("-inf"))
        first = ROLL_LO + WIDTH * self.bucket(hist)
        for k in range(1 if self.deterministic else WIDTH):
            logits.scatter_(1, (first + k).view(-1, 1), 0.0)
        if self.p_eos > 0:
            n = 1 if self.deterministic else WIDTH
            logits[:, EOS] = math.log(n * self.p_eos / (1 - self.p_eos))
        return logits

    def allowed(self, history: list[int]) -> bool:
        """Whether ``history[-1]`` could follow BOS + ``history[:-1]`` under this policy."""
        hist = torch.tensor([[BOS, *history[:-1]]])
        return bool(torch.isfinite(self._next(hist)[0, history[-1]]))

    def logits(self, ids, attention_mask=None):
        hist = torch.cat([torch.full((ids.size(0), 1), BOS), ids], 1)
        return torch.stack([self._next(hist[:, : t + 1]) for t in range(ids.size(1))], 1)

    def encode(self, ids, batch_size=None):
        n = ids.size(0) if ids is not None else batch_size
        hist = torch.full((n, 1), BOS, dtype=torch.long)
        if ids is not None:
            hist = torch.cat([hist, ids.long()], 1)
        self.encode_lengths.append(hist.size(1))
        return self._next(hist), hist

    def step(self, tokens, state):
        self.step_rows.append(tokens.numel())
        hist = torch.cat([state, tokens.view(-1, 1).long()], 1)
        return self._next(hist), hist

    def slice_state(self, state, length=None, repeats=1):
        s = state if length is None else state[:, :length]
        return s.repeat_interleave(repeats, 0)

    def spec(self):
        return {"backend": "fake"}


class RecordingDisc:
    """A probability unique to each sequence (a hash of its real tokens); records every call."""

    def __init__(self) -> None:
        self.records: list[tuple[tuple[int, ...], float]] = []
        self.masks_ok = True

    value = staticmethod(unique_probability)

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.masks_ok &= bool(torch.equal(mask.long(), mask_after_eos(ids, EOS)))
        out = self.value(ids, mask)
        for row, m, v in zip(ids.tolist(), mask.tolist(), out.tolist()):
            self.records.append((tuple(x if k else -1 for x, k in zip(row, m)), v))
        return out


def toy_batch() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([
        [1, 2, 3, 4, 5, 6],          # L=6, no EOS (truncated)
        [7, 8, 9, EOS, PAD, PAD],    # L=4
        [EOS, PAD, PAD, PAD, PAD, PAD],  # L=1: EOS first, nothing to roll out
        [10, 11, 12, 13, 14, EOS],   # L=6, EOS last
        [15, 16, EOS, PAD, PAD, PAD],  # L=3
    ])
    return ids, mask_after_eos(ids, EOS)


def check_layout(rewards, ids, mask, disc: RecordingDisc, R: int, policy: FakePolicy) -> None:
    """Every (b, t) reward is the mean over exactly the R completions of prefix y_b[:t], and
    each of those completions was sampled from the state of that very prefix."""
    B, T = ids.shape
    lengths = mask.sum(1).tolist()
    n_rollouts = 0
    for b in range(B):
        y = ids[b].tolist()
        for t in range(1, T + 1):
            got = float(rewards[b, t - 1])
            if t < lengths[b]:
                mine = [(q, v) for q, v in disc.records if list(q[:t]) == y[:t] and ROLL_LO <= q[t] < ROLL_HI]
                assert len(mine) == R, (b, t, len(mine))
                n_rollouts += len(mine)
                assert got == pytest.approx(sum(v for _, v in mine) / R, abs=1e-6), (b, t)
                for seq, _ in mine:  # each completion token could follow what precedes it
                    real = [x for x in seq if x != -1]
                    assert all(policy.allowed(real[: j + 1]) for j in range(t, len(real))), (b, t, seq)
            elif t == lengths[b]:
                assert got == pytest.approx(float(RecordingDisc.value(ids[b:b + 1], mask[b:b + 1])), abs=1e-7)
            else:
                assert got == 0.0, (b, t)
    # nothing else was rolled out: B full sequences plus the rollouts above
    assert len(disc.records) == B + n_rollouts
    assert disc.masks_ok


@pytest.mark.parametrize("use_state", [False, True])
def test_reward_layout_each_reward_is_the_mean_of_its_own_rollouts(use_state):
    ids, mask = toy_batch()
    policy, disc, R = FakePolicy(), RecordingDisc(), 4
    state = policy.encode(ids[:, :-1])[1] if use_state else None
    policy.encode_lengths.clear()
    rewards = mc_rollout_rewards(policy, disc, ids, mask, R, state=state, generator=torch.Generator().manual_seed(0))
    assert rewards.shape == ids.shape and rewards.dtype == torch.float32
    check_layout(rewards, ids, mask, disc, R, policy)
    # one encode pass without a state, none with one; never a per-prefix re-encoding
    assert policy.encode_lengths == ([] if use_state else [ids.size(1)])
    # per prefix: one step of B rows (feeding y_t), then the decode steps of B*R rows
    assert set(policy.step_rows) <= {ids.size(0), ids.size(0) * R}


@pytest.mark.parametrize("max_rollout_batch, R", [(10, 5), (5, 3), (1, 4), (1000, 4)])
def test_grouped_rollouts_keep_the_layout(max_rollout_batch, R):
    ids, mask = toy_batch()
    policy, disc = FakePolicy(), RecordingDisc()
    rewards = mc_rollout_rewards(policy, disc, ids, mask, R, max_rollout_batch=max_rollout_batch,
                                 generator=torch.Generator().manual_seed(1))
    check_layout(rewards, ids, mask, disc, R, policy)
    group = max(1, min(R, max_rollout_batch // ids.size(0)))
    assert max(policy.step_rows) == ids.size(0) * group


def test_grouping_does_not_change_deterministic_rewards():
    ids, mask = toy_batch()
    ref = mc_rollout_rewards(FakePolicy(deterministic=True), RecordingDisc(), ids, mask, 6)
    for cap in (5, 10, 15, 29):
        got = mc_rollout_rewards(FakePolicy(deterministic=True), RecordingDisc(), ids, mask, 6, max_rollout_batch=cap)
        assert torch.equal(got, ref)


def test_eos_in_completions_last_token_and_padding():
    ids, mask = toy_batch()
    disc = RecordingDisc()
    rewards = mc_rollout_rewards(FakePolicy(p_eos=0.3), disc, ids, mask, 8, generator=torch.Generator().manual_seed(2))
    lengths = mask.sum(1)
    full = RecordingDisc.value(ids, mask)
    assert torch.equal(rewards[torch.arange(5), lengths - 1], full)  # token L_b: D(y)
    assert torch.all(rewards[mask == 0] == 0)  # padding: no reward
    assert torch.all(rewards[mask == 1] > 0)
    assert disc.masks_ok  # completions that ended early were masked after their EOS
    assert any(EOS in seq[1:] for seq, _ in disc.records if -1 in seq)  # some did end early


def test_all_rows_finished_needs_no_rollout():
    ids = torch.tensor([[EOS, PAD, PAD], [EOS, PAD, PAD]])
    policy, disc = FakePolicy(), RecordingDisc()
    rewards = mc_rollout_rewards(policy, disc, ids, mask_after_eos(ids, EOS), 4)
    assert torch.equal(rewards[:, 1:], torch.zeros(2, 2))
    assert policy.encode_lengths == [] and policy.step_rows == [] and len(disc.records) == 2


def test_input_validation():
    ids, mask = toy_batch()
    with pytest.raises(ValueError, match="rollout_num"):
        mc_rollout_rewards(FakePolicy(), RecordingDisc(), ids, mask, 0)
    with pytest.raises(ValueError, match="right-padded"):
        mc_rollout_rewards(FakePolicy(), RecordingDisc(), ids, mask.flip(1), 2)
    with pytest.raises(ValueError, match="must both be"):
        mc_rollout_rewards(FakePolicy(), RecordingDisc(), ids, mask[:, :3], 2)
    with pytest.raises(ValueError, match="one probability"):
        mc_rollout_rewards(FakePolicy(), lambda i, m: torch.zeros(i.size(0), 2), ids, mask, 2)


# ---- the transformer backend ---------------------------------------------------------------
def tiny_gpt2(seed: int = 0, vocab: int = 20) -> Generator:
    return helpers.tiny_gpt2(vocab, seed, n_positions=16, dropout=0.1)


def test_sample_with_state_matches_sample_and_holds_the_prefix():
    gen = tiny_gpt2()
    ids, state = sample_with_state(gen, 6, 8, generator=torch.Generator().manual_seed(3))
    gen.eval()
    assert torch.equal(ids, gen.sample(6, 8, generator=torch.Generator().manual_seed(3)))
    # the state holds BOS + ids[:, :T-1]: stepping the last token gives the teacher-forced logits
    logits, _ = gen.step(ids[:, -1], gen.slice_state(state))
    assert torch.allclose(logits, gen.model(input_ids=gen._with_bos(ids, 6)).logits[:, -1], atol=1e-5)


def test_transformer_rollout_reuses_the_cache_and_matches_encoding():
    gen = tiny_gpt2(vocab=20)
    disc = CNNDiscriminator(20, 8, embed_dim=8, filter_sizes=(2, 3), num_filters=(4, 4), pad_token_id=0)
    disc.train()
    gen.train()
    ids, state = sample_with_state(gen, 4, 8, generator=torch.Generator().manual_seed(4))
    mask = mask_after_eos(ids, gen.eos_token_id)
    before = [(layer.keys.clone(), layer.values.clone()) for layer in state.layers]

    lengths_seen: list[int] = []
    hook = gen.model.register_forward_pre_hook(
        lambda mod, args, kwargs: lengths_seen.append(kwargs["input_ids"].size(1)), with_kwargs=True
    )
    try:
        with_state = mc_rollout_rewards(gen, disc, ids, mask, 3, state=state, generator=torch.Generator().manual_seed(5))
        assert set(lengths_seen) == {1}  # only single-token steps: no prefix is re-encoded
        lengths_seen.clear()
        encoded = mc_rollout_rewards(gen, disc, ids, mask, 3, generator=torch.Generator().manual_seed(5))
        assert sorted(lengths_seen)[-1] == int(mask.sum(1).max()) and sorted(lengths_seen)[-2] == 1  # one encode
    finally:
        hook.remove()
    assert torch.allclose(with_state, encoded, atol=1e-5)
    assert gen.training and disc.training  # modes restored (rollouts ran in eval mode)
    assert all(torch.equal(k, layer.keys) and torch.equal(v, layer.values) for (k, v), layer in zip(before, state.layers))
    assert torch.all(with_state[mask == 0] == 0)
    full = disc.eval().prob_real(ids, mask)
    assert torch.allclose(with_state[torch.arange(4), mask.sum(1) - 1], full)


def test_update_rollout_policy_keeps_rate_of_the_old_params_and_copies_embeddings():
    gen = tiny_gpt2(seed=0)
    roll = make_rollout_policy(gen)
    assert not roll.training and not any(p.requires_grad for p in roll.parameters())
    old = {k: v.clone() for k, v in roll.named_parameters()}
    with torch.no_grad():
        for p in gen.parameters():
            p.add_(torch.randn_like(p))
    update_rollout_policy(roll, gen, rate=0.8)
    src = dict(gen.named_parameters())
    embeddings = {"model.transformer.wte.weight", "model.transformer.wpe.weight"}
    for name, p in roll.named_parameters():
        if name in embeddings:
            assert torch.equal(p, src[name]), name
        else:
            assert torch.allclose(p, 0.8 * old[name] + 0.2 * src[name], atol=1e-6), name
    assert roll.model.lm_head.weight is roll.model.transformer.wte.weight  # tying survives
    update_rollout_policy(roll, gen, rate=0.0)
    assert all(torch.equal(p, src[n]) for n, p in roll.named_parameters())
    with pytest.raises(ValueError, match="rate"):
        update_rollout_policy(roll, gen, rate=1.5)
    with pytest.raises(ValueError):
        update_rollout_policy(roll, tiny_gpt2(vocab=21), rate=0.8)
