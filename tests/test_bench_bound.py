"""The compute bound of ``benchmarks/bench_adversarial.py --units bound`` (issue 18): its count of
a discriminator epoch's multiply-adds agrees with PyTorch's own FLOP counter."""
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_adversarial  # noqa: E402

from gan_writer.models.discriminator import CNNDiscriminator  # noqa: E402


@pytest.mark.parametrize("highway", ["seqgan", "single"])
@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_epoch_multiply_adds_match_torch_flop_counter(highway, impl):
    torch.manual_seed(0)
    disc = CNNDiscriminator(5000, 20, highway=highway, impl=impl)
    ids = torch.randint(5000, (8, 20))  # one epoch of 4 real + 4 generated rows
    with FlopCounterMode(display=False) as counter:
        disc(ids).sum().backward()
    assert counter.get_total_flops() == 2 * bench_adversarial.cnn_epoch_macs(disc, 4)


def test_the_seqgan_highway_is_the_extra_work_over_textgan_architecture():
    seqgan = bench_adversarial.cnn_epoch_macs(CNNDiscriminator(5000, 20), 1)
    single = bench_adversarial.cnn_epoch_macs(CNNDiscriminator(5000, 20, highway="single"), 1)
    assert seqgan - single == 3 * 2 * 1720 * 1720  # one more 1720 x 1720 matrix, forward + backward, 2 rows
    assert seqgan / single == pytest.approx(1.28, abs=0.005)
