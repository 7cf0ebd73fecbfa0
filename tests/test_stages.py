"""The SeqGAN chain through the real CLI on a slice of `shi`: MLE → discriminator
pretraining → adversarial training, each stage loading the previous checkpoint by path."""
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_writer.checkpoint import load_artifacts
from gan_writer.cli import main
from gan_writer.commands.generate import generate_texts
from gan_writer.systems.discriminator import load_discriminator

REPO = Path(__file__).resolve().parents[1]
TINY = ["--trainer.enable_progress_bar=false", "--trainer.log_every_n_steps=1"]


def scalars(run: Path, tag: str) -> list[float]:
    ea = EventAccumulator(str(run))
    ea.Reload()
    return [e.value for e in ea.Scalars(tag)]


def tags(run: Path) -> set[str]:
    ea = EventAccumulator(str(run))
    ea.Reload()
    return set(ea.Tags()["scalars"])


def checkpoint(run: Path) -> dict:
    from gan_writer.checkpoint import resolve_checkpoint

    return torch.load(resolve_checkpoint(run), map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def chain(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("chain")
    mle = root / "poetry_zh" / "mle"
    assert main(["fit", "--config", str(REPO / "experiments/poetry_zh/mle.yaml"), *TINY,
          f"--trainer.logger.init_args.save_dir={root}", "--trainer.max_epochs=2", "--trainer.val_check_interval=null",
          "--trainer.limit_val_batches=2", "--model.init_args.generator.n_embd=32", "--model.init_args.generator.n_head=2",
          "--model.init_args.warmup_steps=0", "--model.init_args.lr=0.01", "--model.init_args.num_text_samples=0",
          "--data.init_args.max_train_samples=640", "--data.init_args.batch_size=32"]) == 0
    disc = root / "poetry_zh" / "disc"
    assert main(["fit", "--config", str(REPO / "experiments/poetry_zh/disc.yaml"), *TINY,
          f"--trainer.logger.init_args.save_dir={root}", "--trainer.max_epochs=4", "--trainer.limit_train_batches=15",
          "--trainer.limit_val_batches=2", f"--model.init_args.init_checkpoint={mle}", "--model.init_args.lr=0.002",
          "--model.init_args.num_negatives=1000", "--model.init_args.negatives_every_n_epochs=2",
          "--model.init_args.discriminator.n_layer=1", "--model.init_args.discriminator.n_embd=32",
          f"--data.init_args.tokenizer={mle}", "--data.init_args.batch_size=32"]) == 0
    return root, mle, disc


def seqgan(root, init, *extra, config="seqgan"):
    assert main(["fit", "--config", str(REPO / f"experiments/poetry_zh/{config}.yaml"), *TINY,
          f"--trainer.logger.init_args.save_dir={root}", "--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
          "--trainer.limit_val_batches=1", f"--model.init_args.init_checkpoint={init}",
          "--model.init_args.g_batch_size=8", "--model.init_args.rollout_num=2", "--model.init_args.d_num_samples=32",
          "--model.init_args.d_batch_size=16", "--model.init_args.num_text_samples=2",
          f"--data.init_args.tokenizer={init}", "--data.init_args.max_train_samples=640", *extra]) == 0


def test_discriminator_pretraining_learns_to_tell_real_from_generated(chain):
    _, mle, disc = chain
    run = disc / "version_0"
    loss = scalars(run, "disc/loss")
    assert loss[-1] < loss[0]
    acc = [(r + f) / 2 for r, f in zip(scalars(run, "val/disc_acc_real"), scalars(run, "val/disc_acc_fake"))]
    assert acc == pytest.approx(scalars(run, "val/disc_acc"))
    assert acc[-1] > 0.6
    assert all(0.0 <= a <= 1.0 for a in scalars(run, "val/disc_acc_train_real"))
    model, spec = load_discriminator(str(disc))
    assert spec["config"]["kind"] == "transformer" and spec["vocab_size"] == load_artifacts(mle).generator.vocab_size
    # the checkpoint carries the (frozen) MLE generator unchanged
    a = load_artifacts(disc).generator.state_dict()
    b = load_artifacts(mle).generator.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_seqgan_stage_logs_rewards_and_discriminator_and_saves_a_usable_checkpoint(chain):
    root, mle, disc = chain
    seqgan(root, disc)
    run = root / "poetry_zh" / "seqgan" / "version_0"
    rewards = scalars(run, "adv/reward_mean")
    assert len(rewards) == 2 and all(0.0 < r < 1.0 for r in rewards)
    for tag in ("adv/g_loss", "adv/kl_to_mle", "disc/loss", "disc/acc_real", "disc/acc_fake", "val/nll",
                "metrics/bleu_2", "metrics/self_bleu_2", "val/nll_test"):
        assert scalars(run, tag), tag
    assert abs(scalars(run, "adv/kl_to_mle")[0]) < 1e-4  # first step: generator == MLE reference
    # the generator moved away from the MLE start, the pretrained discriminator was loaded and trained
    g0, g1 = load_artifacts(disc).generator.state_dict(), load_artifacts(run).generator.state_dict()
    assert any(not torch.equal(g0[k], g1[k]) for k in g0)
    d0, d1 = load_discriminator(str(disc))[0].state_dict(), load_discriminator(str(run))[0].state_dict()
    assert d0.keys() == d1.keys() and any(not torch.equal(d0[k], d1[k]) for k in d0)
    texts = generate_texts(str(run), n=3, seed=0)
    assert len(texts) == 3 and all(texts)


SMALL_CNN = ["--model.init_args.discriminator.kind=cnn", "--model.init_args.discriminator.embed_dim=8",
             "--model.init_args.discriminator.filter_sizes=[1,2]", "--model.init_args.discriminator.num_filters=[4,4]"]


def test_seqgan_delayed_rollout_and_ema_options_act(chain, tmp_path):
    _, mle, _ = chain
    # start from the MLE checkpoint with a fresh (small) discriminator
    seqgan(tmp_path, mle, *SMALL_CNN, "--model.init_args.rollout_policy=delayed", "--model.init_args.advantage=ema",
           "--model.init_args.kl_coef=0.1", "--model.init_args.temperature=0.8")
    run = tmp_path / "poetry_zh" / "seqgan" / "version_0"
    assert len(scalars(run, "adv/reward_mean")) == 2
    state = checkpoint(run)["state_dict"]
    start = load_artifacts(mle).generator.state_dict()
    # the delayed copy was mixed: neither the MLE start nor the trained generator
    mixed = [k for k in start if "wte" not in k and "wpe" not in k and start[k].is_floating_point()]
    assert any(not torch.equal(state[f"rollout.{k}"], start[k]) for k in mixed)
    assert any(not torch.equal(state[f"rollout.{k}"], state[f"generator.{k}"]) for k in mixed)
    assert bool(state["ema.seen"].all()) and 0.0 < float(state["ema.value"][0]) < 1.0


def test_seqgan_mle_steps_g_steps_and_no_discriminator_steps(chain, tmp_path):
    _, mle, _ = chain
    seqgan(tmp_path, mle, *SMALL_CNN, "--model.init_args.mle_steps=1", "--model.init_args.advantage=none",
           "--model.init_args.g_steps=2", "--model.init_args.d_steps=0")
    run = tmp_path / "poetry_zh" / "seqgan" / "version_0"
    logged = tags(run)
    assert "adv/mle_nll" in logged and "adv/reward_mean" in logged
    assert not any(t.startswith("disc/") for t in logged), logged
    g_state, d_state = (s["state"] for s in checkpoint(run)["optimizer_states"])
    assert int(g_state[0]["step"]) == 2 * (2 + 1)  # 2 batches x (2 policy steps + 1 MLE step)
    assert d_state == {}  # the discriminator was never stepped


@pytest.mark.parametrize("config", ["seqgan_rloo", "seqgan_ppo", "seqgan_maligan", "seqgan_prefix"])
def test_shipped_estimator_configs_run(chain, config, tmp_path):
    _, mle, disc = chain
    extra = ["--model.init_args.discriminator.kind=prefix_lstm", "--model.init_args.discriminator.embed_dim=8"] \
        if config == "seqgan_prefix" else []
    seqgan(tmp_path, disc, *extra, "--trainer.limit_train_batches=1", config=config)
    run = tmp_path / "poetry_zh" / config / "version_0"
    assert scalars(run, "adv/reward_mean") and scalars(run, "adv/grad_norm")
    assert ("adv/ppo_clip_fraction" in tags(run)) == (config == "seqgan_ppo")
    assert load_artifacts(run).generator is not None


def test_validation_schedule_does_not_change_training(chain, tmp_path):
    _, _, disc = chain
    weights = []
    for name, schedule in (("every", ["--trainer.val_check_interval=1"]), ("never", ["--trainer.limit_val_batches=0"])):
        seqgan(tmp_path / name, disc, *schedule, "--model.init_args.num_text_samples=2")
        run = tmp_path / name / "poetry_zh" / "seqgan" / "version_0"
        weights.append(checkpoint(run)["state_dict"])
    a, b = weights
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_seqgan_from_a_checkpoint_without_discriminator_warns_it_is_untrained(chain):
    from gan_writer.systems.seqgan import SeqGANModule

    _, mle, _ = chain
    with pytest.warns(UserWarning, match="holds no discriminator.*UNTRAINED"):
        module = SeqGANModule(str(mle), max_length=26)
    assert type(module.discriminator).__name__ == "CNNDiscriminator"


def test_bad_option_names_the_key(chain, tmp_path):
    _, mle, _ = chain
    with pytest.raises(ValueError, match=r"model\.init_args\.baseline"):
        from gan_writer.systems.seqgan import SeqGANModule

        SeqGANModule(str(mle), baseline="median")


def test_adversarial_stage_same_seed_same_weights(chain, tmp_path):
    _, mle, disc = chain
    weights = []
    for name in ("a", "b"):
        seqgan(tmp_path / name, disc)
        run = tmp_path / name / "poetry_zh" / "seqgan" / "version_0"
        weights.append((load_artifacts(run).generator.state_dict(), load_discriminator(str(run))[0].state_dict()))
    (ga, da), (gb, db) = weights
    assert all(torch.equal(ga[k], gb[k]) for k in ga) and all(torch.equal(da[k], db[k]) for k in da)


def test_adversarial_run_logs_every_value_on_one_step_axis(chain, tmp_path):
    """adv/*, disc/*, val/*, metrics/* and the text samples share the adversarial-batch axis
    (the final metrics too), not Lightning's global_step (which counts G and D optimizer steps)."""
    _, _, disc = chain
    # 2 epochs of 2 batches; the metrics callback scores every 2nd validation, so the final
    # model is scored at the end of training (on_train_end)
    seqgan(tmp_path, disc, "--trainer.max_epochs=2")
    run = tmp_path / "poetry_zh" / "seqgan" / "version_0"
    ea = EventAccumulator(str(run))
    ea.Reload()
    steps = {tag: [e.step for e in ea.Scalars(tag)] for tag in ea.Tags()["scalars"]}
    steps |= {tag: [e.step for e in ea.Tensors(tag)] for tag in ea.Tags()["tensors"]}
    batches = 4
    assert ea.Scalars("adv/reward_mean")[-1].step == batches - 1  # 0-based batch index
    last = batches - 1
    assert max(max(s) for s in steps.values()) == last, {t: s for t, s in steps.items() if max(s) > last}
    # the final score carries the last batch's index, as the values logged with it (not one past it)
    assert len(steps["metrics/bleu_2"]) == 2 and steps["metrics/bleu_2"][-1] == last
    assert steps["metrics/samples/text_summary"][-1] == last
    assert steps["val/nll_test"] == steps["metrics/bleu_2"]


def test_frozen_modules_are_explained_once_and_lightnings_warning_kept_for_others(chain, tmp_path, recwarn):
    """The discriminator stage's frozen generator is in eval mode on purpose: no warning for it,
    but a module left in eval mode by mistake still gets Lightning's warning."""
    import lightning as L
    import warnings

    from gan_writer.data.datamodule import TextDataModule
    from gan_writer.systems.discriminator import DiscriminatorConfig, DiscriminatorPretraining

    _, mle, _ = chain
    dm = TextDataModule(corpus="shi", tokenizer=str(mle), max_length=26, batch_size=16, max_train_samples=64)

    def fit(model):
        trainer = L.Trainer(max_steps=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit(model, dm)
        return [str(w.message) for w in caught if "in eval mode at the start of training" in str(w.message)]

    kw = dict(init_checkpoint=str(mle), tokenizer=dm.tokenizer, max_length=26, num_negatives=32,
              discriminator=DiscriminatorConfig(kind="transformer", n_layer=1, n_embd=16, n_head=2))
    assert fit(DiscriminatorPretraining(**kw)) == []
    model = DiscriminatorPretraining(**kw)
    model.discriminator.model.transformer.drop.eval()  # a trainable module in eval mode by mistake
    assert len(fit(model)) == 1
