"""The SeqGAN stage's generator step on a tiny checkpoint (no CLI, no corpus): gradient
clipping after mixed-precision unscaling, the estimator options, and their validation."""
from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torch.utils.data import DataLoader

from gan_writer.checkpoint import KEY, payload
from gan_writer.models import GeneratorConfig, build_generator
from gan_writer.systems.discriminator import DiscriminatorConfig, load_discriminator
from gan_writer.systems.seqgan import SeqGANModule
from gan_writer.tokenization import char_tokenizer

CNN = DiscriminatorConfig(kind="cnn", embed_dim=8, filter_sizes=[1, 2], num_filters=[4, 4])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tok = char_tokenizer(["春眠不觉晓", "处处闻啼鸟", "夜来风雨声", "花落知多少"])
    torch.manual_seed(0)
    gen = build_generator(GeneratorConfig(n_layer=1, n_embd=16, n_head=2, n_positions=16, dropout=0.0), tok)
    path = tmp_path_factory.mktemp("tiny") / "mle.ckpt"
    torch.save({"state_dict": {f"generator.{k}": v for k, v in gen.state_dict().items()},
                KEY: payload(gen, tok, stage="MLEModule", max_length=8)}, path)
    return str(path), tok


def fit(module: SeqGANModule, steps: int = 2, precision: str = "32-true") -> None:
    data = [{"ids": torch.zeros(4, dtype=torch.long), "attention_mask": torch.ones(4, dtype=torch.long)}] * steps
    # Lightning turns precision="16-mixed" on CPU into bf16; the plugin keeps fp16 and its GradScaler
    amp = dict(plugins=[MixedPrecision("16-mixed", "cpu")]) if precision == "16-mixed" else dict(precision=precision)
    trainer = L.Trainer(max_epochs=1, limit_val_batches=0, **amp, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, train_dataloaders=DataLoader(data, batch_size=1))


class ClipProbe(SeqGANModule):
    """Records the generator gradient norm that ``optimizer.step`` is about to apply."""

    def on_before_optimizer_step(self, optimizer) -> None:
        super().on_before_optimizer_step(optimizer)
        if optimizer is self.optimizers()[0].optimizer:
            grads = [p.grad.norm() for p in self.generator.parameters() if p.grad is not None]
            self.applied = getattr(self, "applied", []) + [float(torch.stack(grads).norm())]


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed", "32-true"])
def test_generator_clip_sees_unscaled_gradients(tiny, precision):
    path, tok = tiny
    clip = 1e-3  # far below the true norm, so the clip always bites
    torch.manual_seed(0)
    module = ClipProbe(path, discriminator=CNN, tokenizer=tok, max_length=8, g_batch_size=8, rollout_num=2,
                       d_steps=0, num_text_samples=0, grad_clip=clip)
    fit(module, steps=3, precision=precision)
    plugin = module.trainer.precision_plugin
    assert isinstance(plugin, MixedPrecision) == (precision != "32-true")
    assert (getattr(plugin, "scaler", None) is not None) == (precision == "16-mixed")
    finite = [n for n in module.applied if n == n and n != float("inf")]
    assert finite, module.applied
    # clipped after unscaling: the applied norm is the clip value (clipping the scaled
    # gradients, as before, left clip / 65536 under 16-mixed)
    assert all(n == pytest.approx(clip, rel=0.02) for n in finite), (precision, module.applied)


class RealRows(L.LightningDataModule):
    """The two things a SeqGAN stage reads from its data module: training ids (the real rows of
    the D steps) and a train loader."""

    def __init__(self, tok, steps: int) -> None:
        super().__init__()
        ids = [tok.encode(line) for line in ("春眠不觉晓", "处处闻啼鸟", "夜来风雨声", "花落知多少")] * 8
        self.datasets = {"train": type("Split", (), {"ids": ids})()}
        self.steps = steps

    def train_dataloader(self):
        row = {"ids": torch.zeros(4, dtype=torch.long), "attention_mask": torch.ones(4, dtype=torch.long)}
        return DataLoader([row] * self.steps, batch_size=1)


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_discriminator_steps_run_under_mixed_precision(tiny, precision):
    """The D steps of the adversarial stage run inside Lightning's autocast; the default CNN
    (impl="fast", a hand-written backward) raised a dtype mismatch there before."""
    path, tok = tiny
    torch.manual_seed(0)
    module = SeqGANModule(path, discriminator=CNN, tokenizer=tok, max_length=8, g_batch_size=4, rollout_num=1,
                          d_steps=1, d_epochs=1, d_num_samples=16, d_batch_size=8, num_text_samples=0)
    assert module.discriminator.impl == "fast"
    before = {k: v.clone() for k, v in module.discriminator.state_dict().items()}
    amp = dict(plugins=[MixedPrecision("16-mixed", "cpu")]) if precision == "16-mixed" else dict(precision=precision)
    trainer = L.Trainer(max_epochs=1, limit_val_batches=0, **amp, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=RealRows(tok, steps=2))
    after = module.discriminator.state_dict()
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    assert after["highway.gate.weight"].dtype == torch.float32
    assert not torch.equal(before["highway.gate.weight"], after["highway.gate.weight"])  # the D steps trained it


OPTIONS = [
    dict(reward="sequence", advantage="leave_one_out", loss="ppo_clip", ppo_epochs=3, loss_aggregation="sum"),
    dict(reward="mc_rollout", rollout_batching="all_prefixes", advantage="group_norm", group_size=4),
    dict(reward="sequence", loss="maligan", kl_coef=0.1, kl_penalty="loss", loss_aggregation="sequence_mean"),
    dict(reward="prefix", gamma=0.23, advantage="ema", kl_coef=0.1,
         discriminator=DiscriminatorConfig(kind="prefix_lstm", embed_dim=8)),
    dict(reward="sequence", advantage="leave_one_out",  # the issue-18 CNN options away from their defaults
         discriminator=DiscriminatorConfig(kind="cnn", embed_dim=8, filter_sizes=[1, 2], num_filters=[4, 4],
                                           impl="reference", highway="single")),
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: o["reward"] + "+" + o.get("loss", o.get("advantage")))
def test_estimator_options_step_the_generator(tiny, options, tmp_path):
    path, tok = tiny
    options = {"discriminator": CNN, **options}
    module = SeqGANModule(path, tokenizer=tok, max_length=8, g_batch_size=8, rollout_num=2, d_steps=0,
                          num_text_samples=0, **options)
    before = {k: v.clone() for k, v in module.generator.state_dict().items()}
    logs = []
    module.log = lambda key, value, **kw: logs.append((key, value))  # noqa: E731 - capture, no logger
    fit(module, steps=2)
    after = module.generator.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    g_opt = module.optimizers()[0].optimizer
    steps = next(iter(g_opt.state.values()))["step"]
    assert int(steps) == 2 * options.get("ppo_epochs", 1)  # one update per PPO epoch per batch
    keys = {k for k, _ in logs}
    assert {"adv/reward_mean", "adv/score_mean", "adv/grad_norm", "adv/kl_to_mle"} <= keys
    assert ("adv/ppo_clip_fraction" in keys) == (options.get("loss") == "ppo_clip")
    assert ("adv/kl_k3" in keys) == (options.get("kl_penalty") == "loss")
    if options.get("advantage") == "ema":
        assert bool(module.ema.seen.all())
    # the checkpoint rebuilds the same discriminator (a prefix one included)
    module.trainer.save_checkpoint(tmp_path / "run.ckpt")
    disc, spec = load_discriminator(str(tmp_path / "run.ckpt"))
    assert type(disc) is type(module.discriminator) and spec["config"]["kind"] == options["discriminator"].kind
    if options["discriminator"].kind == "cnn":
        assert (disc.impl, disc.highway_kind) == (options["discriminator"].impl, options["discriminator"].highway)
    assert all(torch.equal(v, module.discriminator.state_dict()[k]) for k, v in disc.state_dict().items())


def test_bad_estimator_options_name_the_key(tiny):
    path, tok = tiny
    base = dict(tokenizer=tok, max_length=8, g_batch_size=8, discriminator=CNN)
    with pytest.raises(ValueError, match=r"model\.init_args\.reward=prefix needs a prefix discriminator"):
        SeqGANModule(path, reward="prefix", **base)
    with pytest.raises(ValueError, match=r"model\.init_args\.loss must be one of"):
        SeqGANModule(path, loss="ppo", **base)
    with pytest.raises(ValueError, match=r"model\.init_args\.group_size"):
        SeqGANModule(path, advantage="group_norm", group_size=3, **base)
    with pytest.raises(ValueError, match=r"model\.init_args\.baseline"):
        SeqGANModule(path, baseline="median", **base)
    with pytest.warns(UserWarning, match="deprecated"):
        module = SeqGANModule(path, baseline="mean", **base)
    assert module.estimator.advantage == "leave_one_out"


def test_checkpoint_configs_keep_the_cnn_computation_they_were_saved_with():
    """A CNN spec saved before the impl option existed ran Conv1d: it comes back as reference;
    one saved since keeps its impl; other kinds are left alone; today's default is fast."""
    from dataclasses import asdict

    from gan_writer.systems.discriminator import saved_config

    old = {k: v for k, v in asdict(DiscriminatorConfig()).items() if k not in ("impl", "highway")}
    assert (saved_config(old).impl, saved_config(old).highway) == ("reference", "seqgan")
    assert saved_config(asdict(DiscriminatorConfig())).impl == "fast" == DiscriminatorConfig().impl
    assert saved_config(asdict(DiscriminatorConfig(impl="reference"))).impl == "reference"
    prefix = {k: v for k, v in asdict(DiscriminatorConfig(kind="prefix_lstm")).items() if k != "impl"}
    assert saved_config(prefix).impl == "fast"  # not a CNN: the default, which build() accepts
    saved_config(prefix).build(20, 8, 0)
    # saved before the default changed: impl "reference" for every kind; it must still load
    for kind in ("prefix_lstm", "transformer"):
        before = asdict(DiscriminatorConfig(kind=kind, impl="reference", n_embd=8, n_head=2, n_layer=1))
        assert type(saved_config(before).build(20, 8, 0)).__name__ != "CNNDiscriminator"
    with pytest.raises(TypeError):
        saved_config({**old, "impl_": "fast"})


def test_cnn_only_options_are_refused_for_other_discriminators(tiny):
    path, tok = tiny
    for kind in ("prefix_lstm", "transformer"):
        with pytest.raises(ValueError, match="highway applies to kind cnn only"):
            SeqGANModule(path, tokenizer=tok, max_length=8, discriminator=DiscriminatorConfig(kind=kind, highway="single"))
    with pytest.raises(ValueError, match="impl: unknown 'fastest'"):
        SeqGANModule(path, tokenizer=tok, max_length=8, discriminator=DiscriminatorConfig(kind="transformer", impl="fastest"))
    with pytest.raises(ValueError, match="unknown highway"):
        SeqGANModule(path, tokenizer=tok, max_length=8, discriminator=DiscriminatorConfig(highway="double"))


def test_form_reward_weight_mixes_the_form_score_into_the_reward(tmp_path):
    from gan_writer.adversarial.form_reward import form_reward
    from gan_writer.sampling import mask_after_eos

    poem = "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。"
    tok = char_tokenizer([poem])
    torch.manual_seed(0)
    gen = build_generator(GeneratorConfig(n_layer=1, n_embd=16, n_head=2, n_positions=32, dropout=0.0), tok)
    path = tmp_path / "mle.ckpt"
    torch.save({"state_dict": {f"generator.{k}": v for k, v in gen.state_dict().items()},
                KEY: payload(gen, tok, stage="MLEModule", max_length=26)}, path)
    common = dict(discriminator=CNN, tokenizer=tok, max_length=26, g_batch_size=4, rollout_num=2, d_steps=0,
                  num_text_samples=0)
    module = SeqGANModule(str(path), reward="sequence", form="wujue", form_reward_weight=0.5, **common)
    assert not any(k.startswith("scorer") or k.startswith("_form_mix") for k in module.state_dict())
    real = torch.tensor([tok(poem, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]])
    noise = module.generator.sample(3, 24, generator=torch.Generator().manual_seed(0))
    noise = torch.nn.functional.pad(noise, (0, real.size(1) - noise.size(1)), value=tok.pad_token_id)[:, :real.size(1)]
    ids = torch.cat([real, noise])
    mask = mask_after_eos(ids, tok.eos_token_id)
    form = form_reward(ids, tok, "wujue", tok.eos_token_id)
    assert form[0] > 0.5 and bool((form[1:] == 0).all())  # the real quatrain keeps the form, noise does not
    with torch.no_grad():
        d = module.discriminator.eval().prob_real(ids, mask)
    assert torch.allclose(module.scorer(ids, mask), 0.5 * d + 0.5 * form, atol=1e-6)
    plain = SeqGANModule(str(path), reward="sequence", **common)
    assert plain.scorer is plain.discriminator
    with pytest.raises(ValueError, match="form_reward_weight > 0 needs model.init_args.form"):
        SeqGANModule(str(path), reward="sequence", form_reward_weight=0.5, **common)
    with pytest.raises(ValueError, match="form_reward_weight must be in"):
        SeqGANModule(str(path), reward="sequence", form="wujue", form_reward_weight=1.5, **common)


def test_the_deprecated_baseline_refuses_to_contradict_advantage(tiny):
    """baseline=ema used to override an explicit advantage silently (and the saved config named
    the advantage that did not run)."""
    path, tok = tiny
    kw = dict(discriminator=CNN, tokenizer=tok, max_length=8, g_batch_size=4, rollout_num=1, num_text_samples=0)
    with pytest.raises(ValueError, match="baseline='ema'.*conflicts with model.init_args.advantage='group_norm'"):
        SeqGANModule(path, baseline="ema", advantage="group_norm", **kw)
    with pytest.warns(UserWarning, match="deprecated"):
        assert SeqGANModule(path, baseline="ema", advantage="ema", **kw).estimator.advantage == "ema"
    with pytest.warns(UserWarning, match="deprecated"):
        assert SeqGANModule(path, baseline="mean", **kw).estimator.advantage == "leave_one_out"


def test_a_whole_batch_group_of_one_row_is_refused_at_fit_start(tiny):
    path, tok = tiny
    module = SeqGANModule(path, discriminator=CNN, tokenizer=tok, max_length=8, g_batch_size=1, rollout_num=1,
                          advantage="group_norm", d_steps=0, num_text_samples=0)  # one process: known at fit
    with pytest.raises(ValueError, match="advantage=group_norm compares the samples of a group.*got 1"):
        fit(module, steps=1)
