"""Image encoder, image-conditioned generator and multimodal discriminator, on a tiny random
CLIP vision tower saved to a local directory and real packaged photographs."""
import numpy as np
import pytest
import torch

from gan_writer.adversarial.rollout import mc_rollout_rewards, sample_with_state
from gan_writer.multimodal import ImageConditioningRequired, ImageEncoder, ImagePrefixGenerator, PrefixConfig
from gan_writer.multimodal.discriminator import MultimodalDiscriminator, multimodal_discriminator_loss
from gan_writer.sampling import mask_after_eos
from helpers import tiny_gpt2, unique_probability
from image_helpers import KEYWORDS, packaged_images, synthetic_poem, tiny_clip_dir


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return tiny_clip_dir(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def features(encoder_dir):
    """{name: ((1, H) pooled, (1, N, H) patch)} of the packaged images."""
    enc = ImageEncoder(encoder_dir)
    images = packaged_images()
    pooled, patch = enc.encode_images(list(images.values()))
    return {name: (pooled[i:i + 1], patch[i:i + 1]) for i, name in enumerate(images)}


def test_encoder_loads_local_clip_and_gives_pooled_and_patch_features(encoder_dir, features):
    enc = ImageEncoder(encoder_dir)
    assert enc.identity["class"] == "CLIPVisionModel" and enc.identity["feature_dim"] == 32
    assert enc.identity["weights"]["model.safetensors"]["bytes"] > 0
    pooled, patch = features["astronaut"]
    assert pooled.shape == (1, 32) and patch.shape == (1, 17, 32)  # (32/8)^2 patches + CLS
    again, _ = enc.encode_images([packaged_images()["astronaut"]])
    torch.testing.assert_close(again, pooled)
    # different photographs, different features
    assert (features["astronaut"][0] - features["coffee"][0]).abs().max() > 1e-2
    assert not any(p.requires_grad for p in enc.parameters())


def test_encoder_errors_name_the_directory(tmp_path):
    from transformers import GPT2Config

    with pytest.raises(FileNotFoundError, match="no config.json"):
        ImageEncoder(tmp_path / "nothing")
    GPT2Config(n_layer=1).save_pretrained(str(tmp_path / "gpt2"))
    with pytest.raises(ValueError, match="model_type 'gpt2'.*supports"):
        ImageEncoder(tmp_path / "gpt2")
    clip = tiny_clip_dir(tmp_path / "clip")
    (clip / "preprocessor_config.json").unlink()
    with pytest.raises(FileNotFoundError, match="preprocessor_config.json"):
        ImageEncoder(clip)


def tiny_llama(n_positions: int = 32):
    """A 1-layer random Llama (rotary positions, as SmolLM2) behind the generator contract."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from gan_writer.models import Generator

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=20, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, max_position_embeddings=n_positions, bos_token_id=1, eos_token_id=2,
                         pad_token_id=0)
    return Generator(AutoModelForCausalLM.from_config(config))


@pytest.mark.parametrize("lm,prefix", [
    ("gpt2", PrefixConfig(prefix_length=3)),
    ("gpt2", PrefixConfig(3, "transformer", "patch", num_layers=1, num_heads=2)),
    ("llama", PrefixConfig(prefix_length=3)),
], ids=["gpt2-mlp-pooled", "gpt2-transformer-patch", "llama-mlp-pooled"])
def test_conditioned_generator_keeps_the_generator_contract(features, lm, prefix):
    torch.manual_seed(0)
    base = tiny_gpt2(n_positions=32) if lm == "gpt2" else tiny_llama(32)
    gen = ImagePrefixGenerator(base, 32, prefix, freeze_lm=False).eval()
    feat = features["chelsea"][0 if prefix.feature == "pooled" else 1]
    cond = gen.condition(feat)
    assert cond.max_positions == 32 - 3
    ids = torch.randint(3, 20, (2, 6))
    full = cond.logits(ids)  # (B, T, V) teacher forced
    logits, state = cond.encode(ids[:, :3])
    torch.testing.assert_close(logits, full[:, 3])
    logits, state = cond.step(ids[:, 3], state)
    torch.testing.assert_close(logits, full[:, 4])
    # slice_state lengths count from BOS (the k prefix positions are kept)
    short = cond.slice_state(state, length=2, repeats=2)
    logits, _ = cond.step(ids[:, 1].repeat_interleave(2), short)
    torch.testing.assert_close(logits, full[:, 2].repeat_interleave(2, 0))
    # rollouts reusing the sampling cache agree with rollouts that re-encode the prefix
    ids, state = sample_with_state(cond, 3, 8, generator=torch.Generator().manual_seed(1))
    mask = mask_after_eos(ids, cond.eos_token_id)
    a = mc_rollout_rewards(cond, unique_probability, ids, mask, 2, state=state, generator=torch.Generator().manual_seed(2))
    b = mc_rollout_rewards(cond, unique_probability, ids, mask, 2, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b)
    assert a[mask.bool()].min() > 0
    # gradients of log-probs reach the mapper
    cond.log_probs(ids, mask).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.mapper.parameters())


def test_unbound_generator_asks_for_an_image(features):
    gen = ImagePrefixGenerator(tiny_gpt2(n_positions=32), 32, PrefixConfig(prefix_length=2))
    with pytest.raises(ImageConditioningRequired, match="bind an image"):
        gen.sample(2, 4)
    with pytest.raises(ValueError, match="H=32"):
        gen.condition(torch.zeros(1, 16))
    with pytest.raises(ValueError, match="bound to 2 images but got 3 rows"):
        gen.condition(torch.cat([features["coffee"][0], features["rocket"][0]])).sample(3, 2)


def _next_token_kl(gen, fa, fb) -> float:
    with torch.no_grad():
        la, _ = gen.condition(fa).encode(None, batch_size=1)
        lb, _ = gen.condition(fb).encode(None, batch_size=1)
    pa, pb = la.log_softmax(-1), lb.log_softmax(-1)
    return float((pa.exp() * (pa - pb)).sum())


def test_samples_change_with_the_image(features):
    """A few MLE steps on two photographs with different poems: the next-token
    distributions given each image then differ by a KL of more than a nat, and so do samples."""
    torch.manual_seed(0)
    gen = ImagePrefixGenerator(tiny_gpt2(n_positions=32), 32, PrefixConfig(prefix_length=2), freeze_lm=False)
    fa, fb = features["astronaut"][0], features["coffee"][0]
    kl_before = _next_token_kl(gen.eval(), fa, fb)
    poems = torch.tensor([[5, 6, 5, 6, 2], [9, 10, 9, 10, 2]])  # tokens ... then EOS (2)
    opt = torch.optim.Adam(gen.parameters(), lr=1e-2)
    gen.train()
    for _ in range(40):
        loss = -gen.condition(torch.cat([fa, fb])).log_probs(poems).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    gen.eval()
    kl_after = _next_token_kl(gen, fa, fb)
    assert kl_after > 1.0 > kl_before
    first_a = gen.condition(fa).sample(20, 1, generator=torch.Generator().manual_seed(0))[:, 0]
    first_b = gen.condition(fb).sample(20, 1, generator=torch.Generator().manual_seed(0))[:, 0]
    assert (first_a == 5).float().mean() > 0.8 and (first_b == 9).float().mean() > 0.8


def test_multimodal_discriminator_learns_matched_from_mismatched(features):
    """Synthetic pairs: each packaged photograph with poems of its own keywords. After 60
    steps the discriminator tells held-out matched pairs from mismatched ones (chance: 0.5)."""
    names = list(KEYWORDS)
    vocab = {w: i + 3 for i, w in enumerate(w for n in names for w in KEYWORDS[n])}
    rng = np.random.default_rng(0)

    def pairs(n_per_image):
        rows = [(i, synthetic_poem(name, rng)) for i, name in enumerate(names) for _ in range(n_per_image)]
        ids = torch.tensor([[vocab[w] for w in text.split()] + [2] for _, text in rows])
        return torch.tensor([r[0] for r in rows]), {"ids": ids, "attention_mask": torch.ones_like(ids)}

    feats = torch.cat([features[n][0] for n in names])
    torch.manual_seed(0)
    disc = MultimodalDiscriminator(len(vocab) + 3, 32, embed_dim=16, hidden_dim=32, dropout=0.0)
    opt = torch.optim.Adam(disc.parameters(), lr=3e-3)
    train_idx, train = pairs(6)
    for _ in range(60):
        loss, stats = multimodal_discriminator_loss(disc, feats[train_idx], train, train_idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
    test_idx, test = pairs(3)
    with torch.no_grad():
        _, held_out = multimodal_discriminator_loss(disc, feats[test_idx], test, test_idx)
        p_match = disc.prob_paired(feats[test_idx], test["ids"], test["attention_mask"])
        p_other = disc.prob_paired(feats[(test_idx + 1) % len(names)], test["ids"], test["attention_mask"])
    assert held_out["acc_paired"] > 0.8 and held_out["acc_unpaired"] > 0.8
    assert float((p_match > p_other).float().mean()) > 0.9


def _save_tiny(kind: str, path):
    """A tiny random model of ``kind`` with its image processor, saved to ``path``."""
    import warnings

    import transformers as tf

    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "siglip":
            model, proc = tf.SiglipVisionModel(tf.SiglipVisionConfig(**vision)), tf.SiglipImageProcessor(size={"height": 32, "width": 32})
        elif kind == "vit":
            model, proc = tf.ViTModel(tf.ViTConfig(**vision)), tf.ViTImageProcessor(size={"height": 32, "width": 32})
        else:  # a full CLIP (text and vision towers), as downloaded checkpoints are
            text = dict(vocab_size=99, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
            model = tf.CLIPModel(tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=8))
            proc = tf.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
        model.save_pretrained(str(path))
        proc.save_pretrained(str(path))
    return path


@pytest.mark.parametrize("kind,cls,patches", [("siglip", "SiglipVisionModel", 16), ("vit", "ViTModel", 17),
                                              ("clip", "CLIPVisionModel", 17)])
def test_siglip_vit_and_full_clip_directories_load_as_vision_towers(tmp_path, kind, cls, patches):
    enc = ImageEncoder(_save_tiny(kind, tmp_path / kind))
    assert enc.identity["class"] == cls and type(enc.model).__name__ == cls
    images = packaged_images()
    pooled, patch = enc.encode_images([images["rocket"], images["flower"]])
    assert pooled.shape == (2, 16) and patch.shape == (2, patches, 16)
    assert (pooled[0] - pooled[1]).abs().max() > 1e-3
