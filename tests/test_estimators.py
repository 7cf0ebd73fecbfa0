"""Exact math of the estimators (gan_writer.adversarial: advantages, losses, rewards,
experience), the prefix discriminator's causality, all-prefix rollouts, and a toy task on
which every estimator raises a reward."""
from __future__ import annotations

import itertools

import pytest
import torch

from gan_writer.adversarial import (
    EstimatorConfig,
    aggregate,
    batch_mean_baseline,
    discounted_returns,
    group_ids_for,
    group_normalized_advantages,
    kl_k1,
    kl_k3,
    leave_one_out_baseline,
    make_experience,
    make_rollout_policy,
    maligan_advantages,
    mc_rollout_rewards,
    policy_gradient_loss,
    policy_loss,
    ppo_clip_loss,
    prefix_rewards,
    sample_with_state,
)
from gan_writer.models.prefix_discriminator import PrefixDiscriminator, prefix_discriminator_loss
from gan_writer.sampling import mask_after_eos
import helpers

MASK = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
Q = torch.tensor([[1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 99.0, 99.0], [5.0, 99.0, 99.0, 99.0]])


def test_leave_one_out_mean_is_the_mean_of_the_other_rows():
    expected = torch.tensor([[4.0, 4.0, 0.0, 0.0], [3.0, 2.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]])
    assert torch.equal(leave_one_out_baseline(Q, MASK), expected)
    assert torch.equal(batch_mean_baseline(Q, MASK), expected)  # baseline: mean is leave-one-out now
    # where one row reaches a position, its advantage is its reward (not 0 as with the batch mean)
    assert (Q - batch_mean_baseline(Q, MASK))[0, 2:].tolist() == [3.0, 4.0]
    groups = torch.tensor([0, 0, 1])
    assert torch.equal(leave_one_out_baseline(Q, MASK, groups),
                       torch.tensor([[3.0, 4.0, 0.0, 0.0], [1.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]))
    assert torch.equal(group_ids_for(6, 2), torch.tensor([0, 0, 1, 1, 2, 2]))
    assert torch.equal(group_ids_for(3, 0), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="group_size"):
        group_ids_for(6, 4)


def _expected_gradient(baseline_fn, theta, r, B):
    """Exact E[∇θ(−loss)] of one REINFORCE step over all K^B joint draws of a B-row bandit."""
    K = theta.numel()
    total = torch.zeros(K, dtype=torch.float64)
    probs = theta.softmax(0)
    for draw in itertools.product(range(K), repeat=B):
        a = torch.tensor(draw).view(B, 1)
        th = theta.clone().requires_grad_()
        lp = th.log_softmax(0)[a]  # (B, 1)
        rewards = r[a]
        mask = torch.ones(B, 1)
        loss = policy_gradient_loss(lp, rewards, mask, baseline_fn(rewards, mask))
        (grad,) = torch.autograd.grad(-loss, th)
        total += probs[a].prod() * grad
    return total


def test_leave_one_out_gradient_is_unbiased_on_a_bandit_and_the_batch_mean_is_not():
    theta = torch.tensor([0.3, -0.5, 1.1], dtype=torch.float64)
    r = torch.tensor([1.0, 0.0, 0.4], dtype=torch.float64)
    pi = theta.softmax(0)
    true = pi * r - pi * (pi * r).sum()  # ∇θ E[r]
    loo = _expected_gradient(batch_mean_baseline, theta, r, 4)
    assert torch.allclose(loo, true, atol=1e-12)
    # the old baseline (the batch mean including the row itself) shrinks the gradient to 3/4
    with_self = _expected_gradient(lambda q, m: q.mean(0), theta, r, 4)
    assert torch.allclose(with_self, 0.75 * true, atol=1e-12)


def test_group_norm_gives_zero_mean_unit_std_per_group_and_position():
    torch.manual_seed(0)
    q = torch.rand(6, 3)
    mask = torch.ones(6, 3)
    groups = group_ids_for(6, 3)
    a = group_normalized_advantages(q, mask, groups)
    for g in range(2):
        block = a[groups == g]
        assert torch.allclose(block.mean(0), torch.zeros(3), atol=1e-6)
        assert torch.allclose(block.std(0, unbiased=False), torch.ones(3), atol=1e-4)
    assert torch.equal(group_normalized_advantages(torch.full((4, 2), 0.7), torch.ones(4, 2)), torch.zeros(4, 2))
    assert group_normalized_advantages(Q, MASK)[1, 2:].tolist() == [0.0, 0.0]  # padding


def test_ppo_clip_region():
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0, 1.0]])
    old = torch.zeros(1, 5)
    ratio = torch.tensor([[1.5, 1.1, 0.5, 0.9, 1.0]])
    lp = ratio.log().requires_grad_()
    loss, clip_fraction = ppo_clip_loss(lp, old, adv, torch.ones(1, 5), clip_eps=0.2, aggregation="sum")
    loss.backward()
    # clipped where the ratio left [0.8, 1.2] in the advantage's direction: no gradient there
    assert lp.grad[0, 0] == 0 and lp.grad[0, 2] == 0
    # inside: d(−ρA)/d log ρ = −ρA
    assert torch.allclose(lp.grad[0, [1, 3, 4]], torch.tensor([-1.1, 0.9, -1.0]))
    assert loss.item() == pytest.approx(-(1.2 + 1.1 - 0.8 - 0.9 + 1.0))
    assert clip_fraction.item() == pytest.approx(2 / 5)
    # outside in the other direction the unclipped term is kept (pessimistic bound)
    lp2 = torch.tensor([[0.5]]).log().requires_grad_()
    ppo_clip_loss(lp2, torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1), 0.2)[0].backward()
    assert lp2.grad.item() == pytest.approx(-0.5)


def test_maligan_weights():
    scores = torch.tensor([0.5, 0.8, 0.2, 0.5])
    mask = torch.tensor([[1, 1], [1, 0], [1, 1], [1, 1]])
    a = maligan_advantages(scores, mask)
    odds = torch.tensor([1.0, 4.0, 0.25, 1.0])
    expected = 4 * odds / odds.sum() - 1  # n·w − 1 with w = r_D / Σ r_D
    assert torch.allclose(a[:, 0], expected)
    assert a[1, 1] == 0 and torch.allclose(a[:, 0].sum(), torch.tensor(0.0), atol=1e-6)
    grouped = maligan_advantages(scores, mask, torch.tensor([0, 0, 1, 1]))
    assert torch.allclose(grouped[:, 0], torch.tensor([2 * 1 / 5 - 1, 2 * 4 / 5 - 1, 2 * 0.25 / 1.25 - 1, 2 * 1 / 1.25 - 1]))


def test_discounted_returns():
    r = torch.tensor([[1.0, 2.0, 3.0], [1.0, 5.0, 7.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    assert torch.allclose(discounted_returns(r, mask, 0.5), torch.tensor([[2.75, 3.5, 3.0], [3.5, 5.0, 0.0]]))
    assert torch.equal(discounted_returns(r, mask, 0.0), r * mask)
    with pytest.raises(ValueError, match="gamma"):
        discounted_returns(r, mask, 1.5)


def test_aggregation_and_kl_estimators():
    terms = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, float("nan")]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert aggregate(terms, mask, "sum").item() == 10.0
    assert aggregate(terms, mask, "token_mean").item() == 2.5
    assert aggregate(terms, mask, "sequence_mean").item() == 3.0  # (2 + 4) / 2
    with pytest.raises(ValueError, match="loss_aggregation"):
        aggregate(terms, mask, "mean")
    lp, ref = torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -1.0])
    assert torch.allclose(kl_k1(lp, ref), torch.tensor([0.5, -1.0]))
    d = ref - lp
    assert torch.allclose(kl_k3(lp, ref), d.exp() - d - 1) and bool((kl_k3(lp, ref) >= 0).all())


@pytest.mark.parametrize("backbone", ["lstm", "transformer"])
def test_prefix_discriminator_score_at_t_ignores_later_tokens(backbone):
    torch.manual_seed(0)
    disc = PrefixDiscriminator(12, 8, pad_token_id=0, backbone=backbone, embed_dim=16, n_layer=2).eval()
    ids = torch.randint(3, 12, (4, 8))
    mask = torch.ones_like(ids)
    base = disc.prefix_logits(ids, mask)
    for t in range(7):
        changed = ids.clone()
        changed[:, t + 1:] = torch.randint(3, 12, (4, 7 - t))
        out = disc.prefix_logits(changed, mask)
        assert torch.allclose(out[:, : t + 1], base[:, : t + 1], atol=1e-5), t
        assert not torch.allclose(out[:, t + 1:], base[:, t + 1:])
    short = mask.clone()
    short[:, 5:] = 0
    assert torch.allclose(disc(ids, short), base[:, 4], atol=1e-5)  # the sequence logit = last real prefix
    fake = {"ids": torch.randint(3, 12, (4, 8)), "attention_mask": short}
    loss, bce, acc_r, acc_f = prefix_discriminator_loss(disc, {"ids": ids, "attention_mask": mask}, fake)
    assert torch.isfinite(loss) and 0 <= acc_r <= 1 and 0 <= acc_f <= 1


@pytest.mark.parametrize("backend", ["gpt2", "lstm"])
def test_all_prefixes_and_per_prefix_rollouts_agree(backend):
    if backend == "lstm":
        from gan_writer.models.lstm import LSTMGenerator

        torch.manual_seed(0)
        gen = LSTMGenerator(10, emb_dim=8, hidden_dim=12, bos_token_id=1, eos_token_id=2, pad_token_id=0, init_std=0.5)
    else:
        gen = helpers.tiny_gpt2(vocab=10, seed=0, n_positions=8)
    ids, state = sample_with_state(gen, 6, 6, generator=torch.Generator().manual_seed(0))
    mask = mask_after_eos(ids, gen.eos_token_id)
    # deterministic completions (top_k=1) and discriminator: exactly equal rewards
    kw = dict(top_k=1, generator=torch.Generator().manual_seed(1))
    a = mc_rollout_rewards(gen, helpers.unique_probability, ids, mask, 3, state=state, **kw)
    b = mc_rollout_rewards(gen, helpers.unique_probability, ids, mask, 3, batching="all_prefixes", max_rollout_batch=7, **kw)
    assert torch.allclose(a, b) and bool((a[mask.bool()] > 0).all())
    # sampled completions: equal in distribution (the mean share of token 5 per position)
    five = lambda x, m: ((x == 5).float() * m).sum(1) / m.sum(1).clamp(min=1)  # noqa: E731
    fixed = torch.full((2, 6), 4)
    fm = torch.ones_like(fixed)
    pa = mc_rollout_rewards(gen, five, fixed, fm, 3000, generator=torch.Generator().manual_seed(2))
    pb = mc_rollout_rewards(gen, five, fixed, fm, 3000, batching="all_prefixes", generator=torch.Generator().manual_seed(3))
    assert torch.allclose(pa, pb, atol=0.015), (pa, pb)


class ChosenTokenPrefixDisc:
    """A 'prefix discriminator': the share of the chosen token among y_1..y_t, as a logit."""

    def __init__(self, chosen: int) -> None:
        self.chosen = chosen

    def prefix_logits(self, ids, mask):
        m = mask.float()
        share = ((ids == self.chosen).float() * m).cumsum(1) / m.cumsum(1).clamp(min=1)
        return torch.logit(share.clamp(0.01, 0.99)) * m


ESTIMATORS = {
    "mc_rollout": dict(reward="mc_rollout", rollout_num=2),
    "prefix+ema": dict(reward="prefix", advantage="ema", gamma=0.23),
    "sequence+loo": dict(reward="sequence", advantage="leave_one_out"),
    "sequence+group_norm": dict(reward="sequence", advantage="group_norm", group_size=4),
    "ppo_clip": dict(reward="sequence", advantage="leave_one_out", loss="ppo_clip", ppo_epochs=2),
    "maligan": dict(reward="sequence", loss="maligan"),
    "kl_reward": dict(reward="sequence", advantage="leave_one_out", kl_coef=0.05, kl_penalty="reward"),
    "kl_loss+seq_mean": dict(reward="sequence", advantage="leave_one_out", kl_coef=0.05, kl_penalty="loss",
                             loss_aggregation="sequence_mean"),
}


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_every_estimator_raises_the_frequency_of_a_chosen_token(name):
    from gan_writer.adversarial.losses import EMABaseline

    chosen, B, T = 5, 16, 6
    gen = helpers.tiny_gpt2(vocab=10, seed=0, n_positions=8)
    reference = make_rollout_policy(gen)
    prefix = ChosenTokenPrefixDisc(chosen)
    disc = prefix if ESTIMATORS[name]["reward"] == "prefix" else (
        lambda x, m: ((x == chosen).float() * m).sum(1) / m.sum(1).clamp(min=1))
    config = EstimatorConfig(**ESTIMATORS[name])
    config.validate(B)

    def frequency():
        ids = gen.sample(512, T, generator=torch.Generator().manual_seed(123))
        mask = mask_after_eos(ids, gen.eos_token_id)
        return ((ids == chosen) & (mask == 1)).sum().item() / mask.sum().item()

    before = frequency()
    opt = torch.optim.Adam(gen.parameters(), lr=1e-2)
    rng, ema = torch.Generator().manual_seed(0), EMABaseline(0.9)
    for _ in range(30):  # well within the 50 steps the issue allows
        exp = make_experience(gen, disc, config, batch_size=B, max_length=T, reference=reference, ema=ema, rng=rng)
        for _ in range(config.ppo_epochs):
            loss, _ = policy_loss(exp, gen.log_probs(exp.ids, exp.mask), config)
            opt.zero_grad()
            loss.backward()
            opt.step()
    after = frequency()
    print(f"{name}: frequency {before:.3f} -> {after:.3f}")
    assert after > before + 0.2, (before, after)


def test_experience_kl_penalty_in_the_reward_is_the_kl_to_go():
    gen = helpers.tiny_gpt2(vocab=10, seed=0, n_positions=8)
    reference = helpers.tiny_gpt2(vocab=10, seed=1, n_positions=8)
    disc = lambda x, m: torch.full((x.size(0),), 0.5)  # noqa: E731
    beta = 0.3
    exp = make_experience(gen, disc, EstimatorConfig(reward="sequence", kl_coef=beta), batch_size=8, max_length=6,
                          reference=reference, rng=torch.Generator().manual_seed(0))
    m = exp.mask.bool()
    k1 = (gen.log_probs(exp.ids, exp.mask) - reference.log_probs(exp.ids, exp.mask)).detach()
    kl_to_go = (k1 * m).flip(1).cumsum(1).flip(1)
    assert torch.allclose(exp.advantages[m], (0.5 - beta * kl_to_go)[m], atol=1e-5)
    assert torch.allclose(exp.rewards[m], torch.full_like(exp.rewards[m], 0.5))
    # kl_penalty: loss leaves the advantages alone and adds β·k3 to the loss
    cfg = EstimatorConfig(reward="sequence", kl_coef=beta, kl_penalty="loss")
    exp2 = make_experience(gen, disc, cfg, batch_size=8, max_length=6, reference=reference,
                           rng=torch.Generator().manual_seed(0))
    assert torch.allclose(exp2.advantages[exp2.mask.bool()], torch.tensor(0.5))
    lp = gen.log_probs(exp2.ids, exp2.mask)
    loss, stats = policy_loss(exp2, lp, cfg)
    plain, _ = policy_loss(exp2, lp, EstimatorConfig(reward="sequence"))
    k3 = kl_k3(lp, exp2.ref_log_probs)
    assert loss.detach().item() == pytest.approx(plain.detach().item() + beta * float(k3[exp2.mask.bool()].mean()), rel=1e-5)
    assert stats["adv/kl_k3"] > 0


def test_prefix_rewards_and_config_validation():
    disc = ChosenTokenPrefixDisc(5)
    ids = torch.tensor([[5, 4, 5, 2], [4, 4, 2, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    r, scores = prefix_rewards(disc, ids, mask, gamma=0.0)
    assert torch.allclose(r[0], torch.tensor([0.99, 0.5, 2 / 3, 0.5]), atol=1e-5)
    assert torch.allclose(scores, torch.tensor([0.5, 0.01]), atol=1e-5)
    with pytest.raises(ValueError, match="prefix discriminator"):
        prefix_rewards(lambda x, m: x, ids, mask)
    for bad, key in [(dict(reward="mcts"), "model.init_args.reward"), (dict(advantage="mean"), "model.init_args.advantage"),
                     (dict(loss="maligan", advantage="ema"), "model.init_args.advantage"),
                     (dict(ppo_epochs=3), "model.init_args.ppo_epochs"), (dict(group_size=5), "model.init_args.group_size"),
                     (dict(kl_penalty="exact"), "model.init_args.kl_penalty"),
                     (dict(rollout_batching="all"), "model.init_args.rollout_batching"),
                     (dict(gamma=1.5), "model.init_args.gamma"), (dict(clip_eps=0.0), "model.init_args.clip_eps"),
                     (dict(gamma=0.9), "model.init_args.gamma discounts the per-prefix scores of reward=prefix"),
                     (dict(gamma=0.5, reward="sequence"), "no effect with reward='sequence'"),
                     (dict(kl_coef=-1.0), "model.init_args.kl_coef")]:
        with pytest.raises(ValueError, match=key):
            EstimatorConfig(**bad).validate(8)


@pytest.mark.parametrize("options", [dict(advantage="group_norm"), dict(advantage="leave_one_out"),
                                     dict(loss="maligan")], ids=lambda o: "+".join(o.values()))
def test_estimators_that_compare_a_group_refuse_groups_of_one_row(options):
    """group_norm gives one row a zero advantage, maligan a weight of exactly 1 (both: zero
    gradient) and leave-one-out falls back to no baseline: refused, naming the key."""
    with pytest.raises(ValueError, match=r"needs >= 2 rows per group, got 1 \(model.init_args.group_size=1"):
        EstimatorConfig(**options, group_size=1).validate(8)
    with pytest.raises(ValueError, match="got 1 .*g_batch_size=1"):
        EstimatorConfig(**options).validate(1)  # the whole batch of one process
    EstimatorConfig(**options).validate(1, world_size=2)  # a whole-batch group spans the ranks
    EstimatorConfig(**options).validate(1, world_size=0)  # ranks not known yet: checked later
    EstimatorConfig(**options, group_size=2).validate(8)
    EstimatorConfig(advantage="ema", group_size=1).validate(8)  # a running baseline needs no group
