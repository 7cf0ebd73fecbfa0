"""Policy-gradient loss, baselines and the KL penalty (gan_writer.adversarial.losses), and a toy
adversarial loop showing that rollout rewards + the PG loss move the generator the right way."""
from __future__ import annotations

import pytest
import torch

from gan_writer.adversarial import (
    EMABaseline,
    batch_mean_baseline,
    kl_to_reference,
    mc_rollout_rewards,
    policy_gradient_loss,
    sample_with_state,
)
from gan_writer.models import Generator
from gan_writer.sampling import mask_after_eos
import helpers

MASK = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])


def test_pg_loss_value_and_gradient():
    torch.manual_seed(0)
    lp = (-torch.rand(3, 4)).requires_grad_()
    q = torch.rand(3, 4)
    b = torch.rand(4)
    loss = policy_gradient_loss(lp, q, MASK, b)
    m = MASK.float()
    expected = -(lp * (q - b) * m).sum() / m.sum()
    assert torch.allclose(loss, expected)
    loss.backward()
    assert torch.allclose(lp.grad, -(q - b) * m / m.sum())
    assert torch.all(lp.grad[MASK == 0] == 0)


@pytest.mark.parametrize("baseline", [None, 0.3, torch.tensor(0.3), torch.full((4,), 0.3), torch.full((3, 4), 0.3)])
def test_pg_loss_baseline_shapes(baseline):
    lp, q = -torch.rand(3, 4), torch.rand(3, 4)
    b = 0.0 if baseline is None else 0.3
    expected = -(lp * (q - b) * MASK).sum() / MASK.sum()
    assert torch.allclose(policy_gradient_loss(lp, q, MASK, baseline), expected)


def test_pg_loss_padding_and_bad_shapes():
    lp = torch.tensor([[-1.0, -2.0, float("-inf"), float("nan")]], requires_grad=True)
    q = torch.tensor([[0.5, 0.5, 123.0, float("nan")]])
    mask = torch.tensor([[1, 1, 0, 0]])
    loss = policy_gradient_loss(lp, q, mask, 0.1)
    assert torch.isfinite(loss) and torch.allclose(loss, torch.tensor(-(-1 * 0.4 - 2 * 0.4) / 2))
    loss.backward()
    assert torch.equal(lp.grad[0, 2:], torch.zeros(2))
    empty = policy_gradient_loss(torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(2, 3))
    assert empty.item() == 0.0
    with pytest.raises(ValueError):
        policy_gradient_loss(torch.zeros(3, 4), torch.zeros(3, 5), MASK)
    with pytest.raises(ValueError):
        policy_gradient_loss(torch.zeros(3, 4), torch.zeros(3, 4), MASK, torch.zeros(5))
    with pytest.raises(ValueError):
        policy_gradient_loss(torch.zeros(3, 4), torch.zeros(3, 4), MASK, torch.zeros(2, 4))


def test_batch_mean_baseline():
    # leave-one-out (issue 11): the mean of the *other* rows real at t, 0 where there are none;
    # the old value [3, 3, 3, 4] included each row's own reward (a biased gradient)
    q = torch.tensor([[1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 99.0, 99.0], [5.0, 99.0, 99.0, 99.0]])
    expected = torch.tensor([[4.0, 4.0, 0.0, 0.0], [3.0, 2.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]])
    assert torch.allclose(batch_mean_baseline(q, MASK), expected)
    assert torch.equal(batch_mean_baseline(q, torch.zeros(3, 4)), torch.zeros(3, 4))


def tiny_gpt2(vocab: int = 10, seed: int = 0) -> Generator:
    return helpers.tiny_gpt2(vocab, seed, n_positions=8, dropout=0.0)


def test_constant_reward_with_mean_baseline_gives_zero_gradient():
    gen = tiny_gpt2()
    ids, _ = sample_with_state(gen, 16, 6, generator=torch.Generator().manual_seed(0))
    mask = mask_after_eos(ids, gen.eos_token_id)
    rewards = torch.full(ids.shape, 0.7) * mask
    loss = policy_gradient_loss(gen.log_probs(ids, mask), rewards, mask, batch_mean_baseline(rewards, mask))
    loss.backward()
    grads = [p.grad for p in gen.parameters() if p.grad is not None]
    assert grads and max(g.abs().max().item() for g in grads) < 1e-6
    # without the baseline the same rewards do move the policy
    gen.zero_grad()
    policy_gradient_loss(gen.log_probs(ids, mask), rewards, mask).backward()
    assert max(p.grad.abs().max().item() for p in gen.parameters() if p.grad is not None) > 1e-3


def test_ema_baseline():
    ema = EMABaseline(decay=0.5, max_length=5)
    assert torch.equal(ema(4), torch.zeros(4))
    q1 = torch.tensor([[1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 9.0, 9.0], [5.0, 9.0, 9.0, 9.0]])
    ema.update(q1, MASK)
    assert torch.allclose(ema(4), torch.tensor([3.0, 3.0, 3.0, 4.0]))  # first batch: its mean
    q2 = torch.ones(3, 4)
    ema.update(q2, torch.tensor([[1, 1, 1, 1, 1]]).expand(3, 5)[:, :4])
    assert torch.allclose(ema(4), torch.tensor([2.0, 2.0, 2.0, 2.5]))
    assert torch.allclose(ema(5), torch.tensor([2.0, 2.0, 2.0, 2.5, 0.0]))  # position 5 never seen
    clone = EMABaseline(decay=0.5, max_length=5)
    clone.load_state_dict(ema.state_dict())
    assert torch.equal(clone(5), ema(5))
    with pytest.raises(ValueError, match="max_length"):
        ema(6)
    with pytest.raises(ValueError, match="max_length"):
        ema.update(torch.zeros(1, 6), torch.ones(1, 6))

    scalar = EMABaseline(decay=0.9)
    scalar.update(q1, MASK)
    assert scalar().dim() == 0 and scalar().item() == pytest.approx(22 / 7)
    scalar.update(torch.zeros(3, 4), MASK)
    assert scalar().item() == pytest.approx(0.9 * 22 / 7)
    lp = -torch.rand(3, 4)
    assert torch.allclose(policy_gradient_loss(lp, q1, MASK, scalar()), policy_gradient_loss(lp, q1, MASK, 0.9 * 22 / 7))
    with pytest.raises(ValueError):
        EMABaseline(decay=1.0)


def test_kl_full_distribution():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 7, requires_grad=True)
    ref = torch.randn(3, 4, 7, requires_grad=True)
    kl = kl_to_reference(logits, ref, MASK)
    p = torch.distributions.Categorical(logits=logits)
    q = torch.distributions.Categorical(logits=ref)
    per_token = torch.distributions.kl_divergence(p, q)
    assert torch.allclose(kl, (per_token * MASK).sum() / MASK.sum(), atol=1e-6)
    assert torch.allclose(kl_to_reference(logits, ref, MASK, reduction="none"), per_token * MASK, atol=1e-6)
    kl.backward()
    assert logits.grad is not None and ref.grad is None  # the reference is frozen
    assert kl_to_reference(ref, ref.detach().clone(), MASK).abs().item() < 1e-6
    with pytest.raises(ValueError):
        kl_to_reference(logits, ref[:, :3], MASK)
    with pytest.raises(ValueError):
        kl_to_reference(logits, ref, MASK, reduction="sum")


def test_kl_sampled_estimate_is_unbiased():
    torch.manual_seed(0)
    logits, ref = torch.randn(1, 1, 6), torch.randn(1, 1, 6)
    exact = kl_to_reference(logits, ref, torch.ones(1, 1))
    n = 20000
    y = torch.distributions.Categorical(logits=logits[0, 0]).sample((n,)).view(n, 1)
    lp = logits.log_softmax(-1)[0, 0][y]
    lq = ref.log_softmax(-1)[0, 0][y]
    mask = torch.ones(n, 1)
    est = kl_to_reference(lp, lq, mask)
    assert est.item() == pytest.approx(exact.item(), abs=0.03)
    assert torch.allclose(kl_to_reference(lp, lq, mask, reduction="none"), lp - lq)


def test_toy_adversarial_steps_raise_the_reward_of_a_chosen_token():
    """Sample -> rollout rewards -> PG step with Adam, where the 'discriminator' rewards token 5."""
    gen = tiny_gpt2(vocab=10, seed=0)
    chosen, B, T, R = 5, 32, 6, 4

    def disc(ids, mask):  # share of real tokens equal to the chosen one
        m = mask.float()
        return ((ids == chosen).float() * m).sum(1) / m.sum(1).clamp(min=1)

    def evaluate():
        ids = gen.sample(512, T, generator=torch.Generator().manual_seed(123))
        mask = mask_after_eos(ids, gen.eos_token_id)
        return disc(ids, mask).mean().item(), ((ids == chosen) & (mask == 1)).sum().item() / mask.sum().item()

    reward0, freq0 = evaluate()
    opt = torch.optim.Adam(gen.parameters(), lr=1e-2)
    rng = torch.Generator().manual_seed(0)
    for _ in range(30):
        ids, state = sample_with_state(gen, B, T, generator=rng)
        mask = mask_after_eos(ids, gen.eos_token_id)
        rewards = mc_rollout_rewards(gen, disc, ids, mask, R, state=state, generator=rng)
        loss = policy_gradient_loss(gen.log_probs(ids, mask), rewards, mask, batch_mean_baseline(rewards, mask))
        opt.zero_grad()
        loss.backward()
        opt.step()
    reward1, freq1 = evaluate()
    print(f"reward {reward0:.3f} -> {reward1:.3f}, frequency {freq0:.3f} -> {freq1:.3f}")
    assert reward1 > reward0 + 0.2, (reward0, reward1)
    assert freq1 > freq0 + 0.2, (freq0, freq1)
