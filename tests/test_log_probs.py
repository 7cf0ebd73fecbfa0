"""CausalGenerator.log_probs (fused cross-entropy kernels; the LSTM's chunked) against the log_softmax/gather it replaced."""
import pytest
import torch

from gan_writer.models.lstm import LSTMGenerator
from helpers import tiny_gpt2


def reference_log_probs(gen, ids, mask):
    lp = gen.logits(ids, mask).float().log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    return lp * mask.to(lp.dtype)


@pytest.mark.parametrize("backend", ["lstm", "gpt2"])
def test_log_probs_equal_log_softmax_gather_values_and_gradients(backend):
    torch.manual_seed(0)
    gen = LSTMGenerator(50, 8, 8, eos_token_id=1) if backend == "lstm" else tiny_gpt2()
    ids = torch.randint(3, gen.vocab_size, (4, 7))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    got = gen.log_probs(ids, mask)
    want = reference_log_probs(gen, ids, mask)
    assert got.shape == (4, 7)
    if backend == "gpt2":  # the whole logits: bit for bit
        assert torch.equal(got, want)
    else:  # the LSTM's are computed in chunks (gan_writer/models/linear_ce.py): to float rounding
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert (got[1, 5:] == 0).all() and (got[mask.bool()] < 0).all()
    (g1,) = torch.autograd.grad(got.sum(), [next(gen.parameters())])
    (g2,) = torch.autograd.grad(want.sum(), [next(gen.parameters())])
    assert torch.allclose(g1, g2, atol=1e-6, rtol=1e-5)
