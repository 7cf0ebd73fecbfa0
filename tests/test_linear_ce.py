"""The chunked linear log-probabilities (``gan_writer/models/linear_ce.py``) are the same
function as ``log_softmax(h W^T + b)`` at the targets: values and first derivatives, every
chunking, with temperature and without bias, and through ``LSTMGenerator.log_probs``."""
import pytest
import torch
import torch.nn.functional as F

from gan_writer.models.base import CausalGenerator
from gan_writer.models.linear_ce import chunk_rows, linear_log_probs
from gan_writer.models.lstm import LSTMGenerator


def reference(h, w, b, t, scale=1.0):
    return -F.cross_entropy(F.linear(h, w, b) * scale, t, reduction="none")


def leaves(n=37, hidden=8, vocab=50, dtype=torch.float32, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, hidden, generator=g, dtype=dtype).requires_grad_()
    w = torch.randn(vocab, hidden, generator=g, dtype=dtype).requires_grad_()
    b = torch.randn(vocab, generator=g, dtype=dtype).requires_grad_() if bias else None
    return h, w, b, torch.randint(0, vocab, (n,), generator=g)


@pytest.mark.parametrize("rows", [1, 5, 36, 37, 1000])
@pytest.mark.parametrize("scale, bias", [(1.0, True), (1 / 0.7, True), (2.0, False)])
def test_values_and_gradients_match_log_softmax(rows, scale, bias):
    h, w, b, t = leaves(bias=bias)
    upstream = torch.randn(h.size(0), generator=torch.Generator().manual_seed(1))  # any per-row weights
    params = [p for p in (h, w, b) if p is not None]
    want = reference(h, w, b, t, scale)
    want_grads = torch.autograd.grad((want * upstream).sum(), params)
    got = linear_log_probs(h, w, b, t, scale, rows=rows)
    got_grads = torch.autograd.grad((got * upstream).sum(), params)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for a, e in zip(got_grads, want_grads):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)


def test_gradcheck_in_float64():
    h, w, b, t = leaves(n=9, hidden=3, vocab=7, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda h, w, b: linear_log_probs(h, w, b, t, 0.5, rows=4), (h, w, b))


def test_only_the_inputs_that_need_gradients_get_them():
    h, w, b, t = leaves()
    h = h.detach()
    gw, = torch.autograd.grad(linear_log_probs(h, w, b, t).sum(), [w])
    torch.testing.assert_close(gw, torch.autograd.grad(reference(h, w, b, t).sum(), [w])[0], rtol=1e-5, atol=1e-5)


def test_bad_shapes_and_dtypes_are_named():
    h, w, b, t = leaves()
    with pytest.raises(ValueError, match=r"h \(37, 8\), weight \(50, 9\)"):
        linear_log_probs(h, torch.zeros(50, 9), b, t)
    with pytest.raises(ValueError, match="float32"):
        linear_log_probs(h.detach().half(), w.detach().half(), None, t)
    assert chunk_rows(5000) == (4 << 20) // 20000 and chunk_rows(10 ** 9) == 1


def test_lstm_log_probs_take_the_chunked_path_and_agree_with_the_whole_logits(monkeypatch):
    torch.manual_seed(0)
    gen = LSTMGenerator(300, 16, 16, bos_token_id=0, eos_token_id=None, pad_token_id=0)
    ids = torch.randint(1, 300, (6, 9))
    mask = torch.ones_like(ids)
    mask[2, 5:] = 0

    def run(temperature):
        gen.zero_grad()
        lp = gen.log_probs(ids, mask, temperature)
        (lp.sum() / mask.sum()).backward()
        return lp.detach(), [p.grad.clone() for p in gen.parameters()]

    calls = []
    import gan_writer.models.base as base
    monkeypatch.setattr(base, "linear_log_probs", lambda *a, **k: calls.append(1) or linear_log_probs(*a, **k))
    fused = {t: run(t) for t in (1.0, 0.7)}
    assert len(calls) == 2
    monkeypatch.setattr(LSTMGenerator, "linear_head", CausalGenerator.linear_head)  # the whole (B, T, V) logits
    for t, (lp, grads) in fused.items():
        want_lp, want_grads = run(t)
        torch.testing.assert_close(lp, want_lp, rtol=1e-5, atol=1e-5)
        assert bool((lp[2, 5:] == 0).all())
        for a, e in zip(grads, want_grads):
            torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-6)
    assert len(calls) == 2


def test_autocast_takes_the_whole_logits_path(monkeypatch):
    gen = LSTMGenerator(50, 8, 8, bos_token_id=0, eos_token_id=None, pad_token_id=0)
    ids = torch.randint(1, 50, (2, 5))
    import gan_writer.models.base as base
    monkeypatch.setattr(base, "linear_log_probs", lambda *a, **k: pytest.fail("fused under autocast"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lp = gen.log_probs(ids)
    assert lp.dtype == torch.float32 and bool((lp < 0).all())
