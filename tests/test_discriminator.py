"""Tests for gan_writer.models.discriminator (CNN and transformer discriminators)."""
import pytest
import torch

from gan_writer.models.discriminator import (
    CNNDiscriminator,
    DEFAULT_NUM_FILTERS,
    Discriminator,
    TransformerDiscriminator,
    build_discriminator,
)

V = 20  # vocabulary
EOS = 2


def tiny_cnn(max_length=10, **kw):
    args = dict(embed_dim=8, filter_sizes=(1, 2, 3, 5), num_filters=(4, 4, 4, 4), pad_token_id=0)
    args.update(kw)
    return CNNDiscriminator(V, max_length, **args)


def tiny_transformer(model_type="gpt2", **kw):
    return TransformerDiscriminator(V, n_layer=1, n_embd=16, n_head=2, max_length=32, model_type=model_type, **kw)


def padded_batch(seqs, length, pad_id=0):
    """Right-pad ``seqs`` (lists of ids) to ``length``; returns (ids, mask)."""
    ids = torch.full((len(seqs), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), length), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


SAMPLE = [5, 7, 9, 4, EOS]
OTHERS = [[3, 3, 3, EOS], [6, 8, 10, 12, 14, 16, EOS]]


# ----------------------------------------------------------------------------- CNN


def test_cnn_default_architecture_has_1720_filters():
    d = CNNDiscriminator(vocab_size=50, max_length=12)
    assert sum(DEFAULT_NUM_FILTERS) == 1720 == d.num_filters_total
    assert sum(c.out_channels for c in d.convs) == 1720
    assert [c.kernel_size[0] for c in d.convs] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20]
    assert d.embedding.embedding_dim == 64 and d.dropout.p == 0.25 and d.l2_reg_lambda == 0.2
    assert d.output.in_features == 1720 and d.output.out_features == 1
    # max_length 12 < widest filter 20: padded internally, still works and is padding-invariant
    d.eval()
    ids, mask = padded_batch([SAMPLE, *OTHERS], 8)
    out = d(ids, mask)
    assert out.shape == (3,) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_cnn_output_shape_and_prob_real():
    d = tiny_cnn().eval()
    ids, mask = padded_batch([SAMPLE, *OTHERS], 9)
    logits = d(ids, mask)
    assert logits.shape == (3,)
    assert isinstance(d, Discriminator)
    torch.testing.assert_close(d.prob_real(ids, mask), torch.sigmoid(logits))


@pytest.mark.parametrize("pad_id", [0, EOS])
def test_cnn_padding_invariance(pad_id):
    torch.manual_seed(0)
    d = tiny_cnn(max_length=20, pad_token_id=pad_id).eval()
    ids_a, mask_a = padded_batch([SAMPLE, OTHERS[0]], 7, pad_id)
    ids_b, mask_b = padded_batch([OTHERS[1], SAMPLE, OTHERS[0]], 17, pad_id)
    ids_b[2, 10:] = 13  # garbage ids under the mask must not matter either
    a, b = d(ids_a, mask_a), d(ids_b, mask_b)
    assert abs(a[0].item() - b[1].item()) < 1e-6
    assert abs(a[1].item() - b[2].item()) < 1e-6
    alone = d(torch.tensor([SAMPLE]), torch.ones(1, len(SAMPLE)))
    assert abs(alone[0].item() - a[0].item()) < 1e-6
    # mask dtype does not matter
    assert torch.equal(d(ids_a, mask_a.bool()), a)


def test_cnn_too_long_raises_and_trailing_padding_is_trimmed():
    d = tiny_cnn(max_length=6).eval()
    ids, mask = padded_batch([[1] * 7], 7)
    with pytest.raises(ValueError, match="max_length=6"):
        d(ids, mask)
    ids, mask = padded_batch([SAMPLE], 12)  # longer tensor, but only padding beyond 6
    ref_ids, ref_mask = padded_batch([SAMPLE], 6)
    assert abs(d(ids, mask).item() - d(ref_ids, ref_mask).item()) < 1e-6


def test_cnn_input_validation():
    d = tiny_cnn()
    with pytest.raises(ValueError, match="attention_mask shape"):
        d(torch.ones(2, 4, dtype=torch.long), torch.ones(2, 5))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        d(torch.ones(4, dtype=torch.long))
    with pytest.raises(ValueError, match="equal length"):
        CNNDiscriminator(V, 10, filter_sizes=(1, 2), num_filters=(3,))


def test_cnn_l2_penalty_matches_hand_computation():
    d = tiny_cnn(l2_reg_lambda=0.2)
    w, b = d.output.weight.detach(), d.output.bias.detach()
    expected = 0.2 * (0.5 * (w**2).sum() + 0.5 * (b**2).sum())  # tf.nn.l2_loss = sum(x^2)/2
    pen = d.l2_penalty()
    assert pen.dim() == 0 and pen.requires_grad
    torch.testing.assert_close(pen.detach(), expected)
    assert tiny_cnn(l2_reg_lambda=0.0).l2_penalty().item() == 0.0


@pytest.mark.parametrize("options", [{}, {"impl": "reference"}, {"highway": "single"}],
                         ids=["default", "reference", "fast+single"])
def test_cnn_learns_trivial_task(options):
    torch.manual_seed(0)
    T = 8
    d = tiny_cnn(max_length=T, **options)
    opt = torch.optim.Adam(d.parameters(), lr=1e-2)

    def batch(n=32):
        lengths = torch.randint(2, T + 1, (n,))
        mask = (torch.arange(T)[None, :] < lengths[:, None]).long()
        real = torch.full((n, T), 3).masked_fill(mask == 0, 0)
        fake = torch.randint(0, V, (n, T)).masked_fill(mask == 0, 0)
        ids = torch.cat([real, fake])
        labels = torch.cat([torch.ones(n), torch.zeros(n)])
        return ids, torch.cat([mask, mask]), labels

    losses = []
    for _ in range(40):
        ids, mask, y = batch()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(d(ids, mask), y) + d.l2_penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    d.eval()
    with torch.no_grad():
        ids, mask, y = batch(100)
        acc = ((d(ids, mask) > 0).float() == y).float().mean().item()
    assert acc > 0.9
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5])  # the loss went down


# ----------------------------------------------------------------------------- CNN options (issue 18)


def _varied_batch(n, length, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, V, (n, length), generator=g)
    mask = (torch.arange(length)[None, :] < torch.randint(1, length + 1, (n, 1), generator=g)).long()
    return ids, mask


def test_cnn_reference_impl_is_the_conv1d_computation_bit_for_bit():
    """impl="reference" is exactly the computation before issue 18: Conv1d per width, ReLU,
    max over time, SeqGAN's two-matrix highway, output layer. The default is impl="fast" with
    SeqGAN's highway."""
    import torch.nn.functional as F

    torch.manual_seed(3)
    default = tiny_cnn(max_length=12)
    assert default.impl == "fast" and default.highway_kind == "seqgan" and default.scores_jointly
    d = tiny_cnn(max_length=12, impl="reference").eval()
    assert d.impl == "reference" and d.highway_kind == "seqgan" and not d.scores_jointly
    ids, mask = _varied_batch(6, 12)
    emb = d.embedding(ids.masked_fill(mask == 0, 0)) * mask.unsqueeze(-1).float()
    x = F.pad(emb.transpose(1, 2), (0, d.seq_len - 12))
    pooled = torch.cat([F.relu(conv(x)).amax(dim=-1) for conv in d.convs], dim=1)
    t = torch.sigmoid(d.highway.gate(pooled))
    feats = t * F.relu(d.highway.transform(pooled)) + (1.0 - t) * pooled
    assert torch.equal(d(ids, mask), d.output(feats).squeeze(-1))


@pytest.mark.parametrize("highway", ["seqgan", "single"])
@pytest.mark.parametrize("max_length", [12, 24])  # shorter than the widest filter (20), and longer
def test_cnn_fast_impl_matches_reference_values_and_gradients(highway, max_length):
    """impl="fast" on the same weights: SeqGAN-sized CNN (1,720 filters, widths 1..20,
    vocabulary 5,000 as the oracle's), 64 rows of random lengths. Measured max |logit
    difference| 2.9e-6 to 6.4e-6 at |logits| ~4; gradients agree to ~1e-6 of each one's
    largest entry. (Rounding can flip a ReLU whose input is within ~1e-6 of 0, and that
    unit's gradient with it: seen once, 1.7e-3 relative on the highway, with vocabulary 20.)"""
    torch.manual_seed(0)
    ref = CNNDiscriminator(5000, max_length, highway=highway, impl="reference").eval()
    fast = CNNDiscriminator(5000, max_length, highway=highway, impl="fast").eval()
    fast.load_state_dict(ref.state_dict())  # same state dict keys: the weights are interchangeable
    assert fast.scores_jointly
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 5000, (64, max_length), generator=g)
    mask = (torch.arange(max_length)[None, :] < torch.randint(1, max_length + 1, (64, 1), generator=g)).long()
    a, b = ref(ids, mask), fast(ids, mask)
    assert (a - b).abs().max().item() < 2e-5
    (a.square().sum() / 64).backward()
    (b.square().sum() / 64).backward()
    for (name, p), q in zip(ref.named_parameters(), fast.parameters()):
        scale = p.grad.abs().max().item()
        assert scale > 0, name
        assert (p.grad - q.grad).abs().max().item() < 2e-5 * scale, name


def test_cnn_fast_impl_keeps_padding_invariance_and_switches_on_a_built_module():
    torch.manual_seed(0)
    d = tiny_cnn(max_length=20, impl="fast").eval()
    ids_a, mask_a = padded_batch([SAMPLE, OTHERS[0]], 7)
    ids_b, mask_b = padded_batch([OTHERS[1], SAMPLE, OTHERS[0]], 17)
    ids_b[2, 10:] = 13
    a, b = d(ids_a, mask_a), d(ids_b, mask_b)
    assert abs(a[0].item() - b[1].item()) < 1e-6 and abs(a[1].item() - b[2].item()) < 1e-6
    d.impl = "reference"
    assert not d.scores_jointly
    torch.testing.assert_close(d(ids_a, mask_a), a, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="unknown impl"):
        d.impl = "faster"
    with pytest.raises(ValueError, match="unknown impl"):
        tiny_cnn(impl="cuda")
    with pytest.raises(ValueError, match="unknown highway"):
        tiny_cnn(highway="double")


def test_cnn_single_highway_has_textgan_parameter_count():
    """TextGAN-PyTorch's SeqGAN_D (7ff8909, vocabulary 5,000, embedding 64) has 4,085,282
    parameters; ours with highway="single" has the same layers except its 2-way output
    (1720 x 2 + 2) is our single logit (1720 + 1): 1,721 fewer."""
    single = CNNDiscriminator(5000, 20, highway="single")
    seqgan = CNNDiscriminator(5000, 20)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(single) == 4_085_282 - 1_721
    assert count(single.highway) == 1720 * 1720 + 1720
    assert count(seqgan) - count(single) == 1720 * 1720 + 1720
    assert set(single.state_dict()) - set(seqgan.state_dict()) == {"highway.linear.weight", "highway.linear.bias"}


def test_single_highway_is_textgans_formula():
    from gan_writer.models.discriminator import SingleHighway
    import torch.nn.functional as F

    torch.manual_seed(0)
    hw = SingleHighway(16)
    x = torch.randn(5, 16)
    h = hw.linear(x)  # TextGAN: highway = self.highway(pred); sigmoid(highway) * relu(highway) + (1 - sigmoid) * pred
    want = torch.sigmoid(h) * F.relu(h) + (1.0 - torch.sigmoid(h)) * x
    assert torch.equal(hw(x), want)
    assert not torch.equal(SingleHighway(16, gate_bias=-2.0)(x), SingleHighway(16)(x))


# ----------------------------------------------------------------------- transformer


@pytest.mark.parametrize("model_type", ["gpt2", "bert"])
def test_transformer_shape_and_padding_invariance(model_type):
    torch.manual_seed(0)
    d = tiny_transformer(model_type).eval()
    ids_a, mask_a = padded_batch([SAMPLE, OTHERS[0]], 8)
    ids_b, mask_b = padded_batch([OTHERS[1], SAMPLE, OTHERS[0]], 18)
    ids_b[2, 10:] = 13  # garbage under the mask
    with torch.no_grad():
        a, b = d(ids_a, mask_a), d(ids_b, mask_b)
        alone = d(torch.tensor([SAMPLE]), torch.ones(1, len(SAMPLE), dtype=torch.long))
    assert a.shape == (2,) and b.shape == (3,)
    assert abs(a[0].item() - b[1].item()) < 1e-5
    assert abs(a[1].item() - b[2].item()) < 1e-5
    assert abs(alone[0].item() - a[0].item()) < 1e-5
    torch.testing.assert_close(d.prob_real(ids_a, mask_a), torch.sigmoid(a))


@pytest.mark.parametrize("model_type", ["gpt2", "bert"])
def test_transformer_pad_equals_eos(model_type):
    """pad id == EOS id: the mask, not the ids, decides what is padding."""
    torch.manual_seed(0)
    d = tiny_transformer(model_type, pad_token_id=EOS).eval()
    ids_a, mask_a = padded_batch([SAMPLE, OTHERS[1]], 9, pad_id=EOS)
    ids_b, mask_b = padded_batch([SAMPLE, OTHERS[1]], 15, pad_id=EOS)
    with torch.no_grad():
        a, b = d(ids_a, mask_a), d(ids_b, mask_b)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    if model_type == "gpt2":
        # the score is read at the EOS (last real) position, not at the token before it
        with torch.no_grad():
            h = d.model.base_model(input_ids=ids_a, attention_mask=mask_a).last_hidden_state
            expected = d.model.score(h[0, len(SAMPLE) - 1]).squeeze(-1)
        assert abs(a[0].item() - expected.item()) < 1e-5


def test_transformer_save_load_roundtrip(tmp_path):
    torch.manual_seed(0)
    d = tiny_transformer().eval()
    d.save_pretrained(tmp_path / "disc")
    loaded = TransformerDiscriminator.from_pretrained(tmp_path / "disc").eval()
    ids, mask = padded_batch([SAMPLE, *OTHERS], 10)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, mask), d(ids, mask), atol=1e-6, rtol=0)
    assert loaded.model.config.num_labels == 1 and loaded.max_length == 32


def test_transformer_errors():
    d = tiny_transformer()
    with pytest.raises(ValueError, match="max_length=32"):
        d(torch.ones(1, 40, dtype=torch.long), torch.ones(1, 40))
    with pytest.raises(ValueError, match="vocab_size"):
        TransformerDiscriminator()
    with pytest.raises(ValueError, match="model_type"):
        TransformerDiscriminator(V, model_type="lstm")


# --------------------------------------------------------------------------- factory


def test_build_discriminator():
    cnn = build_discriminator("cnn", vocab_size=V, max_length=10, filter_sizes=(1, 2), num_filters=(3, 3))
    assert isinstance(cnn, CNNDiscriminator) and cnn.max_length == 10
    tr = build_discriminator("Transformer", vocab_size=V, max_length=16, n_layer=1, n_embd=16)
    assert isinstance(tr, TransformerDiscriminator) and tr.max_length == 16
    with pytest.raises(ValueError, match="unknown discriminator kind 'rnn'"):
        build_discriminator("rnn", vocab_size=V, max_length=10)
    with pytest.raises(ValueError, match="max_length"):
        build_discriminator("cnn", vocab_size=V)


def test_windowed_conv_max_chunks_rows_without_gradients_only():
    from gan_writer.models.cnn_layers import windowed_conv_max

    torch.manual_seed(0)
    d = tiny_cnn(max_length=12)
    x = torch.randn(7, 12, 8)
    whole = windowed_conv_max(x, d.convs)
    assert whole.requires_grad  # the conv weights need gradients: one chunk, windows kept for backward
    with torch.no_grad():
        chunked = windowed_conv_max(x, d.convs, chunk_bytes=1)  # one row at a time
        once = windowed_conv_max(x, d.convs)
    torch.testing.assert_close(chunked, whole.detach(), rtol=0, atol=1e-6)
    torch.testing.assert_close(once, whole.detach(), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="filter width 5 exceeds the sequence length 4"):
        windowed_conv_max(torch.randn(2, 4, 8), d.convs)


def test_window_max_backward_passes_gradcheck():
    """The fast path's hand-written backward (argmax scatter, recomputed windows, one slice-add
    fold for all widths) against finite differences in float64."""
    from gan_writer.models.cnn_layers import _WindowMaxBank

    torch.manual_seed(0)
    x = torch.randn(3, 7, 4, dtype=torch.double, requires_grad=True)
    w3 = torch.randn(5, 3 * 4, dtype=torch.double, requires_grad=True)
    b3 = torch.randn(5, dtype=torch.double, requires_grad=True)
    w1 = torch.randn(2, 1 * 4, dtype=torch.double, requires_grad=True)
    b1 = torch.randn(2, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: _WindowMaxBank.apply(t[0], (3, 1), *t[1:]), (x, w3, b3, w1, b1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_first_argmax_equals_max_indices_with_ties(dtype):
    """Same positions as ``Tensor.max(dim=1)`` (the first maximum), on scores with many exact ties."""
    from gan_writer.models.cnn_layers import first_argmax

    gen = torch.Generator().manual_seed(0)
    for p in (1, 2, 7, 20):
        y = torch.randint(0, 3, (6, p, 11), generator=gen).to(dtype)  # three values: ties everywhere
        y[0] = -4.5  # a row where every position ties
        y[1, :, 0] = torch.linspace(-1, 1, p, dtype=dtype)  # the last position alone is the maximum
        expected_values, expected = y.max(dim=1)
        values = y.amax(dim=1)
        idx = first_argmax(y.clone(), values)
        assert torch.equal(values, expected_values)
        assert torch.equal(idx, expected) and idx.dtype == torch.int64
        assert idx[0].eq(0).all() and idx[1, 0].item() == p - 1


@pytest.mark.parametrize("rows", [64, 70])  # 2 chunks of 32; 3 chunks, the last of 6 rows
def test_linear_with_chunked_weight_gradient_matches_nn_linear(rows):
    """cnn_layers.linear: same values as the layer, gradients equal to float64's to rounding,
    and the weight gradient is exactly the sum of the chunks' products (the reference path's
    two calls for 32 real + 32 generated rows); gradcheck in float64."""
    from gan_writer.models.cnn_layers import _Linear, linear

    torch.manual_seed(0)
    layer = torch.nn.Linear(40, 24)
    x = torch.randn(rows, 40, requires_grad=True)
    y = linear(x, layer, wgrad_rows=32)
    assert type(y.grad_fn).__name__ == "_LinearBackward"
    assert torch.equal(y, layer(x))
    g = torch.randn(rows, 24)
    y.backward(g)
    chunks = [(g[i:i + 32], x.detach()[i:i + 32]) for i in range(0, rows, 32)]
    expected = chunks[0][0].t().mm(chunks[0][1])
    for gi, xi in chunks[1:]:
        expected.addmm_(gi.t(), xi)
    assert torch.equal(layer.weight.grad, expected)
    w64, x64, g64 = layer.weight.double(), x.detach().double(), g.double()
    torch.testing.assert_close(layer.weight.grad.double(), g64.t() @ x64, rtol=0, atol=1e-5)
    torch.testing.assert_close(layer.bias.grad.double(), g64.sum(0), rtol=0, atol=1e-5)
    torch.testing.assert_close(x.grad.double(), g64 @ w64, rtol=0, atol=1e-5)
    xd = torch.randn(rows, 5, dtype=torch.double, requires_grad=True)
    wd = torch.randn(3, 5, dtype=torch.double, requires_grad=True)
    bd = torch.randn(3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, w, b: _Linear.apply(a, w, b, 32), (xd, wd, bd))


def test_linear_keeps_nn_linear_outside_the_chunked_range():
    """One product where MKL is not slow (B <= 32 rows or B > 96), without gradients, and at
    wgrad_rows=0 (the reference impl's highway); the fast CNN's highway takes chunks."""
    from gan_writer.models.cnn_layers import linear

    layer = torch.nn.Linear(8, 8)
    for rows, wgrad_rows in ((32, 32), (97, 32), (64, 0)):
        assert type(linear(torch.randn(rows, 8), layer, wgrad_rows).grad_fn).__name__ == "AddmmBackward0"
    with torch.no_grad():
        assert linear(torch.randn(64, 8), layer, 32).grad_fn is None
    d = CNNDiscriminator(V, 12, embed_dim=8, filter_sizes=(1, 2), num_filters=(4, 4), impl="fast")
    names = set()
    d.highway.gate.register_forward_hook(lambda *a: names.add("module called"))
    d(torch.randint(0, V, (64, 12)))
    assert not names  # the fast path's highway called linear(), not the Linear module
    d.wgrad_rows = 0  # one product
    d(torch.randint(0, V, (64, 12)))
    assert names == {"module called"}
    names.clear()
    d.wgrad_rows, d.impl = 32, "reference"
    d(torch.randint(0, V, (64, 12)))
    assert names == {"module called"}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cnn_fast_impl_trains_under_autocast_like_the_reference(dtype):
    """Mixed precision (Lightning's bf16-mixed / 16-mixed run the D steps under autocast): the
    fast path computes in the autocast dtype as conv1d does, its backward gets one dtype (it
    raised a dtype mismatch before), and the float32 weights get float32 gradients close to
    the reference path's."""
    from gan_writer.systems.disc_training import discriminator_optimizer, train_discriminator

    torch.manual_seed(0)
    ref = CNNDiscriminator(50, 12, embed_dim=16, filter_sizes=(1, 2, 3), num_filters=(8, 8, 8), impl="reference").eval()
    fast = CNNDiscriminator(50, 12, embed_dim=16, filter_sizes=(1, 2, 3), num_filters=(8, 8, 8), impl="fast").eval()
    fast.load_state_dict(ref.state_dict())
    ids = torch.randint(0, 50, (64, 12))
    with torch.autocast("cpu", dtype=dtype):
        a, b = ref(ids), fast(ids)
    assert a.dtype == b.dtype == dtype
    torch.testing.assert_close(b.float(), a.float(), rtol=0, atol=0.05 * a.abs().max().item())
    a.float().square().sum().backward()
    b.float().square().sum().backward()
    for (name, p), q in zip(ref.named_parameters(), fast.parameters()):
        assert q.grad.dtype == torch.float32, name
        assert (p.grad - q.grad).abs().max().item() <= 0.05 * p.grad.abs().max().item() + 1e-6, name
    real = {"ids": torch.randint(0, 50, (64, 12)), "attention_mask": torch.ones(64, 12, dtype=torch.long)}
    fake = {"ids": torch.randint(0, 50, (64, 12)), "attention_mask": torch.ones(64, 12, dtype=torch.long)}
    before = fast.highway.gate.weight.detach().clone()
    with torch.autocast("cpu", dtype=dtype):
        logs = train_discriminator(fast, discriminator_optimizer(fast, 1e-3, "bf16-mixed"), real, fake, 1, 32)
    assert 0 < logs["disc/bce"] < 2 and not torch.equal(before, fast.highway.gate.weight)
