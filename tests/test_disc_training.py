"""Tests for gan_writer.systems.disc_training: chunked negatives, pre-padded real rows and the
discriminator passes, each against the code it replaced (same seed, same numbers)."""
import copy

import pytest
import torch
import torch.nn.functional as F

from gan_writer.data.datamodule import pad_batch
from gan_writer.models.discriminator import CNNDiscriminator
from gan_writer.models.lstm import LSTMGenerator
from gan_writer.sampling import mask_after_eos
from gan_writer.systems.disc_training import (
    PaddedRows, discriminator_loss, discriminator_optimizer, draw_negatives, score_jointly, train_discriminator,
)

V, EOS, PAD, T = 30, 1, 0, 8


def tiny_generator():
    torch.manual_seed(0)
    return LSTMGenerator(V, emb_dim=8, hidden_dim=8, bos_token_id=2, eos_token_id=EOS, pad_token_id=PAD)


def tiny_cnn(**kw):
    torch.manual_seed(1)
    return CNNDiscriminator(V, T, embed_dim=8, filter_sizes=(1, 2, 3), num_filters=(5, 4, 3), pad_token_id=PAD, **kw)


def test_negatives_in_one_chunk_equal_one_sample_call():
    gen = tiny_generator().train()
    torch.manual_seed(5)
    got = draw_negatives(gen, 40, T, temperature=0.9, max_sample_batch=40)
    assert gen.training  # the flag is restored
    gen.eval()
    torch.manual_seed(5)
    ids = gen.sample(40, T, temperature=0.9)
    assert torch.equal(got["ids"], ids)
    assert torch.equal(got["attention_mask"], mask_after_eos(ids, EOS))


def test_chunked_negatives_equal_the_chunk_sized_sample_calls_padded_to_one_width():
    gen = tiny_generator().eval()
    torch.manual_seed(3)
    got = draw_negatives(gen, 25, T, max_sample_batch=10)
    torch.manual_seed(3)
    parts = [gen.sample(k, T) for k in (10, 10, 5)]
    width = max(p.size(1) for p in parts)
    ids = torch.cat([F.pad(p, (0, width - p.size(1)), value=PAD) for p in parts])
    mask = torch.cat([F.pad(mask_after_eos(p, EOS), (0, width - p.size(1)), value=0) for p in parts])
    assert got["ids"].shape == (25, width) and torch.equal(got["ids"], ids) and torch.equal(got["attention_mask"], mask)
    assert (got["attention_mask"].sum(1) >= 1).all()
    # every row is a real sample: ids after the first EOS are padding
    assert torch.equal(got["ids"].masked_fill(got["attention_mask"] == 0, PAD), got["ids"])
    with pytest.raises(ValueError, match="max_sample_batch"):
        draw_negatives(gen, 5, T, max_sample_batch=0)


def test_padded_rows_select_equals_pad_batch_of_the_same_rows():
    rows = [[5, 6, 7, EOS], [3, EOS], [9, 9, 9, 9, 9, EOS], [4, 4, EOS]]
    padded = PaddedRows(rows, PAD)
    for idx in ([1, 3], [2, 0, 2], [1]):
        got = padded.select(torch.tensor(idx))
        want = pad_batch([rows[i] for i in idx], PAD)
        assert torch.equal(got["ids"], want["ids"]) and torch.equal(got["attention_mask"], want["attention_mask"])
    with pytest.raises(ValueError):
        PaddedRows([], PAD)


def old_discriminator_steps(disc, opt, real, fake, epochs, batch_size):
    """The loop SeqGANModule.discriminator_steps ran before (four floats per minibatch)."""
    n = real["ids"].size(0)
    stats = []
    for _ in range(epochs):
        order = torch.randperm(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            loss, bce, acc_r, acc_f = discriminator_loss(
                disc, {k: v[idx] for k, v in real.items()}, {k: v[idx] for k, v in fake.items()})
            opt.zero_grad()
            loss.backward()
            opt.step()
            stats.append((float(loss.detach()), float(bce), float(acc_r), float(acc_f)))
    tail = stats[-((n + batch_size - 1) // batch_size):]
    return [sum(s[i] for s in tail) / len(tail) for i in range(4)]


def test_train_discriminator_matches_the_per_minibatch_loop():
    gen = tiny_generator()
    torch.manual_seed(7)
    fake = draw_negatives(gen, 37, T)
    real = draw_negatives(gen, 37, T, temperature=0.5)
    disc_a, disc_b = tiny_cnn(), tiny_cnn()
    opt_a, opt_b = torch.optim.Adam(disc_a.parameters(), 1e-2), torch.optim.Adam(disc_b.parameters(), 1e-2)
    torch.manual_seed(11)
    want = old_discriminator_steps(disc_a, opt_a, real, fake, epochs=3, batch_size=8)
    torch.manual_seed(11)
    got = train_discriminator(disc_b, opt_b, real, fake, epochs=3, batch_size=8)
    assert list(got) == ["disc/loss", "disc/bce", "disc/acc_real", "disc/acc_fake"]
    assert list(got.values()) == pytest.approx(want, abs=1e-6)
    for (name, a), b in zip(disc_a.state_dict().items(), disc_b.state_dict().values()):
        assert torch.equal(a, b), name
    assert got["disc/acc_real"] > 0.5 and got["disc/acc_fake"] > 0.5  # it learned something
    assert train_discriminator(disc_b, opt_b, real, fake, epochs=0, batch_size=8) == {}
    with pytest.raises(ValueError, match="as many fake"):
        train_discriminator(disc_b, opt_b, real, {k: v[:5] for k, v in fake.items()}, 1, 8)


def test_fused_discriminator_optimizer_follows_plain_adam():
    gen = tiny_generator()
    torch.manual_seed(7)
    real, fake = draw_negatives(gen, 32, T, temperature=0.5), draw_negatives(gen, 32, T)
    disc_a = tiny_cnn()
    disc_b = copy.deepcopy(disc_a)
    opt_b = discriminator_optimizer(disc_b, 1e-3)
    assert opt_b.defaults["fused"]
    for disc, opt in ((disc_a, torch.optim.Adam(disc_a.parameters(), 1e-3)), (disc_b, opt_b)):
        torch.manual_seed(2)
        train_discriminator(disc, opt, real, fake, epochs=2, batch_size=8)
    for (name, a), b in zip(disc_a.state_dict().items(), disc_b.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6, rtol=0), name
    assert not torch.equal(disc_a.output.weight, tiny_cnn().output.weight)  # it did train


def test_fused_only_where_lightning_can_clip():
    from gan_writer.systems.optim import fused_kwargs

    params = list(tiny_cnn().parameters())
    assert fused_kwargs(params) == {"fused": True} == fused_kwargs(params, "32-true")
    assert fused_kwargs(params, "bf16-mixed") == {} == fused_kwargs(params, "16-mixed")
    assert fused_kwargs([torch.zeros(2, dtype=torch.long)]) == {} == fused_kwargs([])


def _count_forward_calls(disc):
    calls = []
    disc.register_forward_hook(lambda module, args, out: calls.append(args[0].shape))
    return calls


def test_fast_cnn_scores_real_and_fake_in_one_call_with_the_same_loss():
    """impl="fast" (the default): one forward of real + fake rows (padded to the wider batch); the
    loss and accuracies equal impl="reference"'s two calls up to float rounding (eval mode: no dropout)."""
    gen = tiny_generator()
    torch.manual_seed(7)
    real, fake = draw_negatives(gen, 12, T, temperature=0.5), draw_negatives(gen, 12, T)
    real = {k: v[:, :5] for k, v in real.items()}  # narrower than fake: padded to one width
    real["attention_mask"][:, 4] = 0
    ref = tiny_cnn(impl="reference").eval()
    fast = copy.deepcopy(ref)
    fast.impl = "fast"
    assert tiny_cnn().impl == "fast" and not ref.scores_jointly
    ref_calls, fast_calls = _count_forward_calls(ref), _count_forward_calls(fast)
    want = discriminator_loss(ref, real, fake)
    got = discriminator_loss(fast, real, fake)
    assert ref_calls == [(12, 5), (12, fake["ids"].size(1))]
    assert fast_calls == [(24, fake["ids"].size(1))]
    for a, b in zip(got, want):
        assert abs(a.item() - b.item()) < 1e-6
    logit_r, logit_f = score_jointly(fast, real, fake)
    torch.testing.assert_close(logit_r, ref(real["ids"], real["attention_mask"]), rtol=0, atol=1e-6)
    torch.testing.assert_close(logit_f, ref(fake["ids"], fake["attention_mask"]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("highway", ["seqgan", "single"])
def test_train_discriminator_with_the_fast_cnn_learns(highway):
    gen = tiny_generator()
    torch.manual_seed(7)
    fake = draw_negatives(gen, 64, T)
    real = draw_negatives(gen, 64, T, temperature=0.2)
    torch.manual_seed(1)
    disc = CNNDiscriminator(V, T, embed_dim=8, filter_sizes=(1, 2, 3), num_filters=(5, 4, 3), pad_token_id=PAD,
                            impl="fast", highway=highway)
    opt = discriminator_optimizer(disc, 1e-2)
    first = train_discriminator(disc, opt, real, fake, epochs=1, batch_size=16)
    last = train_discriminator(disc, opt, real, fake, epochs=15, batch_size=16)
    assert last["disc/bce"] < first["disc/bce"] - 0.05
    assert (last["disc/acc_real"] + last["disc/acc_fake"]) / 2 > 0.6
