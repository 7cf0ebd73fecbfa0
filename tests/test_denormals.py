"""Denormals flushed to zero while a discriminator trains (gan_writer.denormals)."""
import pytest
import torch

from gan_writer.denormals import denormals_flushed, flush_denormals, set_flush_denormals

TINY = torch.finfo(torch.float32).tiny  # smallest normal float32, 1.18e-38

pytestmark = pytest.mark.skipif(not torch.set_flush_denormal(False), reason="this CPU cannot flush denormals")


def decayed(start: float, steps: int) -> torch.Tensor:
    """An Adam first moment whose gradient stays 0: ``m <- 0.9 m`` (float32)."""
    m = torch.tensor([start], dtype=torch.float32)
    for _ in range(steps):
        m.mul_(0.9)
    return m


def test_flush_denormals_flushes_inside_and_restores_after():
    assert not denormals_flushed()
    outside = decayed(1e-36, 60)  # 1e-36 * 0.9**60 = 1.8e-39
    assert 0 < outside.item() < TINY  # a denormal
    with flush_denormals():
        assert denormals_flushed()
        assert decayed(1e-36, 60).item() == 0.0
        assert decayed(1e-30, 5).item() == pytest.approx(1e-30 * 0.9**5, rel=1e-6)  # normal values untouched
    assert not denormals_flushed()
    with pytest.raises(RuntimeError, match="boom"):
        with flush_denormals():
            raise RuntimeError("boom")
    assert not denormals_flushed()


def test_an_outer_flush_is_kept():
    assert set_flush_denormals(True) is False
    try:
        with flush_denormals():
            pass
        assert denormals_flushed()  # the caller's mode, not switched off
    finally:
        set_flush_denormals(False)


def test_train_discriminator_runs_flushed():
    from gan_writer.models.discriminator import CNNDiscriminator
    from gan_writer.systems.disc_training import discriminator_optimizer, train_discriminator

    torch.manual_seed(0)
    disc = CNNDiscriminator(20, 6, embed_dim=4, filter_sizes=(1, 2), num_filters=(3, 3))
    opt = discriminator_optimizer(disc, 1e-3)
    rows = {"ids": torch.randint(1, 20, (8, 6)), "attention_mask": torch.ones(8, 6, dtype=torch.long)}
    seen = []

    def backward(loss):
        seen.append(denormals_flushed())
        loss.backward()

    logs = train_discriminator(disc, opt, rows, dict(rows), 2, 4, backward=backward)
    assert seen == [True] * 4 and not denormals_flushed()
    assert 0.0 < logs["disc/loss"] < 10.0


def test_discriminator_pretraining_flushes_in_its_optimizer_step_only():
    from gan_writer.systems.discriminator import DiscriminatorPretraining

    stage = DiscriminatorPretraining.__new__(DiscriminatorPretraining)  # optimizer_step needs no state
    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.Adam([w], lr=0.1)
    seen = []

    def closure():
        seen.append(denormals_flushed())
        loss = (w ** 2).sum()
        loss.backward()
        return loss

    stage.optimizer_step(0, 0, opt, closure)
    assert seen == [True] and not denormals_flushed()
    assert w.detach().tolist() == pytest.approx([0.9, 0.9])  # the step was taken
