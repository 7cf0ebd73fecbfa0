"""Tests for gan_writer.models.lstm (the SeqGAN LSTM generator backend)."""
import pytest
import torch

from gan_writer.models import GeneratorConfig, build_generator, build_generator_from_spec
from gan_writer.models.lstm import LSTMGenerator, LSTMState, RecurrentGenerator
from gan_writer.sampling import decode, mask_after_eos

V = 23


def tiny(eos=None, pad=0, seed=0, **kw):
    torch.manual_seed(seed)
    return LSTMGenerator(V, emb_dim=8, hidden_dim=12, bos_token_id=0, eos_token_id=eos, pad_token_id=pad, **kw).eval()


def random_ids(b, t, seed=1):
    return torch.randint(0, V, (b, t), generator=torch.Generator().manual_seed(seed))


def test_shapes_init_and_spec_defaults():
    gen = LSTMGenerator(5000)
    assert (gen.vocab_size, gen.emb_dim, gen.hidden_dim) == (5000, 32, 32)
    assert (gen.bos_token_id, gen.eos_token_id, gen.pad_token_id) == (0, None, 0)
    # SeqGAN init_matrix: N(0, 0.1) everywhere (bias_hh zero: PyTorch's second bias)
    w = gen.embedding.weight.detach()
    assert abs(float(w.std()) - 0.1) < 0.005 and abs(float(w.mean())) < 0.005
    assert abs(float(gen.out.weight.detach().std()) - 0.1) < 0.005
    assert abs(float(gen.lstm.weight_hh_l0.detach().std()) - 0.1) < 0.02
    assert torch.all(gen.lstm.bias_hh_l0 == 0)
    assert gen.spec() == {"backend": "lstm", "vocab_size": 5000, "emb_dim": 32, "hidden_dim": 32,
                          "bos_token_id": 0, "eos_token_id": None, "pad_token_id": 0}
    ids = random_ids(3, 7)
    assert gen.logits(ids).shape == (3, 7, 5000) and gen.log_probs(ids).shape == (3, 7)


def test_bad_special_ids_raise():
    with pytest.raises(ValueError, match="eos_token_id"):
        LSTMGenerator(10, eos_token_id=10)


def test_fused_logits_match_stepwise_recurrence():
    gen = tiny(eos=1)
    ids = random_ids(4, 9)
    fused = gen.logits(ids)
    stepwise = RecurrentGenerator.logits(gen, ids)
    assert torch.allclose(fused, stepwise, atol=1e-5)


def test_log_probs_equal_hand_loop_of_encode_and_step():
    gen = tiny(eos=1, pad=2)
    ids = random_ids(5, 8)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    lp = gen.log_probs(ids, mask)
    logits, state = gen.encode(None, batch_size=5)
    hand = []
    for t in range(ids.size(1)):
        hand.append(logits.log_softmax(-1).gather(-1, ids[:, t : t + 1]).squeeze(-1))
        logits, state = gen.step(ids[:, t], state)
    hand = torch.stack(hand, 1) * mask
    assert torch.allclose(lp, hand, atol=1e-5)
    assert torch.all(lp[1, 5:] == 0)


def test_encode_prefix_equals_bos_then_steps():
    gen = tiny()
    ids = random_ids(3, 6)
    logits, state = gen.encode(ids)
    assert isinstance(state, LSTMState) and state.length == 7 and state.history_h.shape == (3, 7, 12)
    l2, s2 = gen.encode(ids[:, :0])  # empty prefix == BOS only
    for t in range(6):
        l2, s2 = gen.step(ids[:, t], s2)
    assert torch.allclose(logits, l2, atol=1e-6)
    assert torch.allclose(state.h, s2.h, atol=1e-6) and torch.allclose(state.c, s2.c, atol=1e-6)
    assert torch.equal(state.tokens, s2.tokens)


@pytest.mark.parametrize("repeats", [1, 3])
def test_slice_state_then_step_matches_encoding_the_prefix(repeats):
    """The rollout layout: a state sliced to t fed tokens (BOS counts), rows repeated in
    repeat_interleave order, stepped with the next token, gives the logits of encoding
    BOS + ids[:, :t] directly."""
    gen = tiny(eos=1, pad=2)
    ids = random_ids(4, 7)
    _, full = gen.encode(ids)
    before = (full.h.clone(), full.history_h.clone(), full.tokens.clone())
    for t in range(1, ids.size(1) + 1):
        sliced = gen.slice_state(full, t, repeats=repeats)
        assert sliced.h.shape == (4 * repeats, 12) and sliced.length == t
        tok = ids[:, t - 1].repeat_interleave(repeats)
        got, _ = gen.step(tok, sliced)
        want, _ = gen.encode(ids[:, :t])
        assert torch.allclose(got, want.repeat_interleave(repeats, 0), atol=1e-5), t
        # the sliced state itself equals the state of encoding its prefix
        want_h = gen.encode(ids[:, : t - 1], batch_size=4)[1].h.repeat_interleave(repeats, 0)
        assert torch.allclose(sliced.h, want_h, atol=1e-5)
    # the input state was not modified
    assert torch.equal(full.h, before[0]) and torch.equal(full.history_h, before[1]) and torch.equal(full.tokens, before[2])


def test_slice_after_step_and_past_the_cache():
    gen = tiny()
    ids = random_ids(3, 8)
    _, state = gen.encode(ids[:, :3])  # 4 fed tokens cached
    for t in range(3, 8):
        _, state = gen.step(ids[:, t], state)  # steps do not extend the cache
    assert state.length == 9 and state.cached == 4
    ref_logits, ref = gen.encode(ids)
    whole = gen.slice_state(state, None, repeats=2)  # length=None after steps: current (h, c)
    assert torch.allclose(whole.h, ref.h.repeat_interleave(2, 0), atol=1e-5)
    for t in (2, 6, 4, 9, 8):  # inside and past the cache
        s = gen.slice_state(state, t)
        assert torch.allclose(s.h, ref.history_h[:, t - 1], atol=1e-5)
        assert torch.allclose(s.c, ref.history_c[:, t - 1], atol=1e-5)
        assert s.length == t and torch.equal(s.tokens, ref.tokens[:, :t])
    assert state.cached == 9  # the first slice past the cache filled it (memo) ...
    assert torch.allclose(state.h, ref.h, atol=1e-5) and state.length == 9  # ... nothing else changed
    # a repeated state drops the cache; slicing it again recomputes from the ids
    again = gen.slice_state(whole, 5)
    assert torch.allclose(again.h, ref.history_h[:, 4].repeat_interleave(2, 0), atol=1e-5)
    with pytest.raises(ValueError, match="length"):
        gen.slice_state(state, 0)
    with pytest.raises(ValueError, match="length"):
        gen.slice_state(state, 10)


def test_rollouts_from_sliced_states_match_rollouts_from_encoded_prefixes():
    """Monte Carlo completions of the prefix ids[:, :t]: slice_state(encode(y), t, K) then
    step(y[:, t-1]) and decode gives (same seed) the same tokens as decoding from
    encode(y[:, :t]) with rows repeated K times; this is what the rollout code relies on."""
    gen = tiny(eos=1, pad=2)
    ids = random_ids(3, 6)
    K = 4
    _, full = gen.encode(ids)
    for t in range(1, 7):
        s = gen.slice_state(full, t, repeats=K)
        logits, s = gen.step(ids[:, t - 1].repeat_interleave(K), s)
        a = decode(gen.step, s, logits, 8 - t, eos_token_id=1, pad_token_id=2, generator=torch.Generator().manual_seed(t))
        lp, s2 = gen.encode(ids[:, :t])
        s2 = gen.slice_state(s2, None, repeats=K)
        b = decode(gen.step, s2, lp.repeat_interleave(K, 0), 8 - t, eos_token_id=1, pad_token_id=2,
                   generator=torch.Generator().manual_seed(t))
        assert torch.equal(a, b), t


def test_sample_stops_rows_at_eos_and_pads():
    gen = tiny(eos=1, pad=2)
    with torch.no_grad():
        gen.out.bias[1] += 2.5  # make EOS likely
    out = gen.sample(40, 12, generator=torch.Generator().manual_seed(0))
    assert out.shape[0] == 40 and out.shape[1] <= 12
    has_eos = (out == 1).any(1)
    assert has_eos.sum() >= 10
    mask = mask_after_eos(out, 1)
    for row, m in zip(out, mask):
        n = int(m.sum())
        assert torch.all(row[n:] == 2)  # padding only after the first EOS
        if n < row.numel():
            assert row[n - 1] == 1
    # reproducible by seed; the prompt is kept
    prompt = torch.tensor([5, 6])
    p1 = gen.sample(6, 5, prompt_ids=prompt, generator=torch.Generator().manual_seed(3))
    p2 = gen.sample(6, 5, prompt_ids=prompt, generator=torch.Generator().manual_seed(3))
    assert torch.equal(p1, p2) and torch.all(p1[:, :2] == prompt)


def test_sample_without_eos_is_fixed_length():
    gen = tiny(eos=None)
    out = gen.sample(7, 20, generator=torch.Generator().manual_seed(0))
    assert out.shape == (7, 20) and out.min() >= 0 and out.max() < V


def test_spec_round_trip_gives_identical_log_probs():
    gen = tiny(eos=1, pad=2)
    rebuilt = build_generator_from_spec(gen.spec())
    assert isinstance(rebuilt, LSTMGenerator) and rebuilt.spec() == gen.spec()
    rebuilt.load_state_dict(gen.state_dict())
    ids = random_ids(3, 5)
    assert torch.equal(rebuilt.eval().log_probs(ids), gen.log_probs(ids))


def test_build_generator_with_a_tokenizer():
    class Tok:
        bos_token_id, eos_token_id, pad_token_id = 0, None, 0

        def __len__(self):
            return 50

    gen = build_generator(GeneratorConfig(backend="lstm", emb_dim=6, hidden_dim=7), Tok())
    assert isinstance(gen, LSTMGenerator)
    assert (gen.vocab_size, gen.emb_dim, gen.hidden_dim, gen.eos_token_id) == (50, 6, 7, None)


def test_gradients_flow_through_log_probs():
    gen = tiny(eos=1).train()
    ids = random_ids(2, 5)
    (-gen.log_probs(ids).sum()).backward()
    assert all(p.grad is not None for p in gen.parameters())


@pytest.mark.parametrize("hidden", [32, 128])
def test_teacher_forced_logits_and_gradients_are_bit_identical_to_the_transposed_view(hidden):
    """The contiguous hidden states (one addmm with the bias) change no bit against the
    nn.LSTM view (matmul, then the bias added) at the SeqGAN sizes: older runs reproduce."""
    torch.manual_seed(0)
    gen = LSTMGenerator(5000, emb_dim=32, hidden_dim=hidden)
    ids = torch.randint(0, 5000, (64, 20), generator=torch.Generator().manual_seed(3))

    def run(view: bool):
        gen.zero_grad()
        h = gen.lstm(gen.embedding(gen._with_bos(ids[:, :-1], ids.size(0))))[0] if view else gen._hidden_states(ids)
        assert h.is_contiguous() != view
        logits = gen.out(h)
        torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids.flatten()).backward()
        return logits.detach(), {n: p.grad.clone() for n, p in gen.named_parameters()}

    (view_logits, view_grads), (logits, grads) = run(True), run(False)
    assert torch.equal(view_logits, logits) and torch.equal(gen.logits(ids).detach(), logits)
    assert all(torch.equal(view_grads[n], grads[n]) for n in grads)
