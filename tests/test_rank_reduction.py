"""Batch statistics of the baselines summed over data-parallel ranks, without Lightning or
torch.distributed: two threads stand for two ranks, each holding half of a batch, and a
fake all-reduce (a barrier) sums their statistics. Each half's result must be the rows of
the result on the whole batch (what one process with the global batch computes)."""
from __future__ import annotations

import threading

import pytest
import torch

from gan_writer.adversarial import (
    EstimatorConfig, group_normalized_advantages, leave_one_out_baseline, make_experience, make_rollout_policy,
    maligan_advantages,
)
from gan_writer.adversarial.losses import EMABaseline
import helpers


class FakeAllReduce:
    """``world`` threads call ``reduce(rank)(t)`` in step; each gets the sum of all their ``t``."""

    def __init__(self, world: int = 2) -> None:
        self.slots: list[torch.Tensor | None] = [None] * world
        self.barrier = threading.Barrier(world)

    def reduce(self, rank: int):
        def fn(t: torch.Tensor) -> torch.Tensor:
            self.slots[rank] = t.clone()
            self.barrier.wait()
            out = torch.stack(self.slots).sum(0)
            self.barrier.wait()  # every rank has read the slots before the next call writes them
            return out
        return fn


def on_two_ranks(fn, *halves):
    """``fn(*args, reduce=...)`` on each rank's half (threads), the two results in rank order."""
    fake, out, errors = FakeAllReduce(2), [None, None], []

    def run(rank):
        try:
            out[rank] = fn(*halves[rank], reduce=fake.reduce(rank))
        except BaseException as err:  # noqa: BLE001 - reraised in the test thread
            errors.append(err)
            fake.barrier.abort()

    threads = [threading.Thread(target=run, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    return out


def batch(seed: int = 0, B: int = 6, T: int = 5):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.rand(B, T, generator=g)
    lengths = torch.tensor([5, 3, 1, 4, 2, 5])[:B]
    mask = (torch.arange(T) < lengths[:, None]).long()
    return rewards, mask


def halves(*tensors, split: int = 3):
    return [tuple(t[:split] for t in tensors), tuple(t[split:] for t in tensors)]


@pytest.mark.parametrize("fn", [leave_one_out_baseline, group_normalized_advantages])
def test_two_half_batches_reduced_give_the_whole_batch_baseline(fn):
    rewards, mask = batch()
    whole = fn(rewards, mask)
    parts = on_two_ranks(fn, *halves(rewards, mask))
    torch.testing.assert_close(torch.cat(parts), whole, rtol=1e-6, atol=1e-6)
    # without the reduction each half only sees its own rows: a different baseline
    assert not torch.allclose(torch.cat([fn(*h) for h in halves(rewards, mask)]), whole, atol=1e-3)


def test_maligan_weights_of_two_reduced_halves_are_the_whole_batch_weights():
    scores = torch.tensor([0.2, 0.9, 0.5, 0.7, 0.1, 0.6])
    _, mask = batch()
    whole = maligan_advantages(scores, mask)
    parts = on_two_ranks(maligan_advantages, *halves(scores, mask))
    torch.testing.assert_close(torch.cat(parts), whole, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(torch.cat([maligan_advantages(*h) for h in halves(scores, mask)]), whole, atol=1e-3)


@pytest.mark.parametrize("max_length", [None, 5])
def test_ema_baseline_updated_with_two_reduced_halves_equals_one_whole_batch_update(max_length):
    rewards, mask = batch()
    second, mask2 = batch(seed=1)
    whole = EMABaseline(0.5, max_length)
    whole.update(rewards, mask)
    whole.update(second, mask2)
    emas = [EMABaseline(0.5, max_length), EMABaseline(0.5, max_length)]

    def two_updates(ema, r1, m1, r2, m2, reduce):
        ema.update(r1, m1, reduce)
        ema.update(r2, m2, reduce)
        return ema.value.clone()

    args = [(emas[r], *halves(rewards, mask)[r], *halves(second, mask2)[r]) for r in (0, 1)]
    values = on_two_ranks(two_updates, *args)
    for value in values:  # the same average on every rank, that of the whole batches
        torch.testing.assert_close(value, whole.value, rtol=1e-6, atol=1e-6)
    alone = EMABaseline(0.5, max_length)
    alone.update(*halves(rewards, mask)[0])
    assert not torch.allclose(alone.value, whole.value, atol=1e-3)


@pytest.mark.parametrize("group_size, reduced", [(0, True), (4, False)])
def test_experience_reduces_only_groups_that_span_the_ranks(group_size, reduced):
    """The whole batch (``group_size`` 0) is one group over all ranks; a group of k rows is on one rank."""
    gen = helpers.tiny_gpt2(vocab=10, seed=0, n_positions=8)
    calls = []

    def spy(t):
        calls.append(tuple(t.shape))
        return t

    config = EstimatorConfig(reward="sequence", advantage="leave_one_out", group_size=group_size)
    disc = lambda x, m: ((x == 5).float() * m).sum(1) / m.sum(1).clamp(min=1)  # noqa: E731
    make_experience(gen, disc, config, batch_size=8, max_length=6, reference=make_rollout_policy(gen),
                    rng=torch.Generator().manual_seed(0), reduce=spy)
    assert bool(calls) == reduced, calls


def test_distributed_helpers_are_the_identity_on_one_process():
    from gan_writer import distributed

    t = torch.arange(3.0)
    assert distributed.sum_across_ranks(t) is t and distributed.gather_rows(t).shape == (1, 3)
    assert distributed.broadcast_values({"a": 1.5}) == {"a": 1.5}
    with pytest.raises(ValueError, match="rank 0 must pass"):
        distributed.broadcast_values(None)
    assert distributed.rank_seed(7, 0) == 7  # rank 0 keeps the run seed: single-process draws
    assert len({distributed.rank_seed(7, r) for r in range(4)}) == 4
