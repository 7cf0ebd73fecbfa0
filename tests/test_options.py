"""Numeric options are checked when a stage, the data module or a CLI tool is built, and
the error names the YAML key or flag (issue 16)."""
import math
from pathlib import Path

import pytest

from gan_writer.callbacks.metrics import TextMetricsCallback
from gan_writer.cli import main
from gan_writer.commands.compare import parse_temperatures
from gan_writer.commands.evaluate import evaluate_checkpoint
from gan_writer.commands.generate import generate_texts
from gan_writer.models import GeneratorConfig
from gan_writer.systems.discriminator import DiscriminatorConfig, DiscriminatorPretraining
from gan_writer.systems.mle import MLEModule
from gan_writer.systems.options import OptionError, check_option
from gan_writer.systems.seqgan import SeqGANModule

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("value, spec, message", [
    (0, "> 0", "k must be > 0, got 0"),
    (math.nan, "> 0", "k must be a finite number > 0, got nan"),
    (math.inf, ">= 0", "k must be a finite number >= 0, got inf"),
    (3.0, "[0, 1]", r"k must be in \[0, 1\], got 3.0"),
    (1.0, "[0, 1)", r"k must be in \[0, 1\), got 1.0"),
    (True, ">= 1", "k must be a number >= 1, got True"),
    ((0.9, 1.5), "[0, 1)", r"k\[1\] must be in \[0, 1\), got 1.5"),
])
def test_check_option_refuses_out_of_range_and_non_finite_values(value, spec, message):
    with pytest.raises(OptionError, match=message):
        check_option("k", value, spec)


@pytest.mark.parametrize("value, spec", [(None, "> 0"), (1e-9, "> 0"), (0, ">= 0"), (1, "[0, 1]"), (0.5, "(0, 1]")])
def test_check_option_accepts_values_in_range(value, spec):
    check_option("k", value, spec)


@pytest.mark.parametrize("kwargs, message", [
    ({"sample_temperature": 0}, "model.init_args.sample_temperature must be > 0, got 0"),
    ({"lr": -1e-3}, "model.init_args.lr must be > 0, got -0.001"),
    ({"betas": (0.9, 1.0)}, r"model.init_args.betas\[1\] must be in \[0, 1\), got 1.0"),
    ({"warmup_steps": -1}, "model.init_args.warmup_steps must be >= 0, got -1"),
])
def test_mle_options_are_checked_before_anything_is_built(kwargs, message):
    with pytest.raises(OptionError, match=message):
        MLEModule(**kwargs)  # no tokenizer: the check comes first


@pytest.mark.parametrize("kwargs, message", [
    ({"kl_coef": -5}, "model.init_args.kl_coef must be >= 0, got -5"),
    ({"rollout_update_rate": 3.0}, r"model.init_args.rollout_update_rate must be in \[0, 1\], got 3.0"),
    ({"temperature": 0}, "model.init_args.temperature must be > 0, got 0"),
    ({"temperature": math.nan}, "model.init_args.temperature must be a finite number > 0, got nan"),
    ({"d_num_samples": 0}, "model.init_args.d_num_samples must be >= 1, got 0"),
    ({"g_lr": -0.01}, "model.init_args.g_lr must be > 0, got -0.01"),
    ({"d_lr": 0}, "model.init_args.d_lr must be > 0, got 0"),
])
def test_seqgan_options_are_checked_before_the_checkpoint_is_read(kwargs, message):
    with pytest.raises(OptionError, match=message):
        SeqGANModule(init_checkpoint="does/not/exist.ckpt", **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": -1e-4}, "model.init_args.lr must be > 0, got -0.0001"),
    ({"sample_temperature": 0.0}, "model.init_args.sample_temperature must be > 0, got 0.0"),
    ({"num_negatives": 0}, "model.init_args.num_negatives must be >= 1, got 0"),
])
def test_discriminator_pretraining_options_are_checked(kwargs, message):
    with pytest.raises(OptionError, match=message):
        DiscriminatorPretraining(init_checkpoint="does/not/exist.ckpt", **kwargs)


def test_a_width_its_heads_do_not_divide_is_refused_naming_both_keys():
    """n_embd=32 with n_head=3 used to end in torch's "embed_dim must be divisible by num_heads"
    under a 127-line jsonargparse traceback."""
    with pytest.raises(OptionError, match=r"model.init_args.generator.n_embd=32 is not divisible by "
                                          r"model.init_args.generator.n_head=3 .*choose n_head from \[1, 2, 4, 8, 16\]"):
        MLEModule(GeneratorConfig(n_embd=32, n_head=3))
    with pytest.raises(OptionError, match=r"model.init_args.discriminator.n_embd=30 is not divisible by "
                                          r"model.init_args.discriminator.n_head=4 .*\[1, 2, 3, 5, 6, 10, 15\]"):
        DiscriminatorPretraining(init_checkpoint="does/not/exist.ckpt",
                                 discriminator=DiscriminatorConfig(kind="transformer", n_embd=30, n_head=4))
    from gan_writer.models.generator import Generator

    with pytest.raises(OptionError, match="generator.n_embd=12 is not divisible by generator.n_head=5"):
        Generator.from_config(20, 1, 2, 0, n_embd=12, n_head=5)
    assert Generator.from_config(20, 1, 2, 0, n_layer=1, n_embd=12, n_head=4, n_positions=8).max_positions == 8


def test_a_bad_trainer_value_is_one_line(capsys, tmp_path):
    for arg, message in (("--trainer.max_steps=-5", "`max_steps` must be a non-negative integer or -1"),
                         ("--trainer.max_epochs=-2", "`max_epochs` must be a non-negative integer or -1")):
        assert main(["fit", "--config", str(REPO / "experiments/poetry_zh/mle.yaml"),
                     f"--trainer.logger.init_args.save_dir={tmp_path}", arg]) == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and "Seed set" not in ln]
        assert err == [f"gan-writer fit: error: {message} (infinite steps). You passed in -5."
                       if "steps" in arg else f"gan-writer fit: error: {message}. You passed in -2."]
    assert not list(tmp_path.rglob("*.ckpt"))


def test_the_generator_and_discriminator_blocks_are_checked_field_by_field():
    with pytest.raises(OptionError, match=r"model.init_args.generator.dropout must be in \[0, 1\), got 1.5"):
        MLEModule(GeneratorConfig(dropout=1.5))
    with pytest.raises(OptionError, match=r"model.init_args.generator.n_positions must be >= 2, got 0"):
        MLEModule({"n_positions": 0})
    with pytest.raises(OptionError, match=r"model.init_args.discriminator.num_filters\[1\] must be >= 1, got 0"):
        SeqGANModule(init_checkpoint="does/not/exist.ckpt", discriminator=DiscriminatorConfig(num_filters=[4, 0]))
    with pytest.raises(OptionError, match=r"model.init_args.discriminator.l2_reg_lambda must be >= 0, got -0.2"):
        DiscriminatorPretraining(init_checkpoint="x.ckpt", discriminator=DiscriminatorConfig(l2_reg_lambda=-0.2))


def test_metrics_callback_temperatures_are_checked():
    with pytest.raises(OptionError, match=r"TextMetricsCallback.init_args.temperatures\[1\] must be > 0, got 0"):
        TextMetricsCallback(temperatures=[0.7, 0])


@pytest.mark.parametrize("temperature", [math.nan, math.inf, 0.0, -1.0])
def test_generate_and_evaluate_refuse_a_bad_temperature_before_loading(temperature):
    with pytest.raises(ValueError, match="--temperature must be"):
        generate_texts("does/not/exist.ckpt", temperature=temperature)
    with pytest.raises(ValueError, match="--temperature must be"):
        evaluate_checkpoint("does/not/exist.ckpt", temperature=temperature)


@pytest.mark.parametrize("text", ["nan", "0.7,inf", "1.0,nan"])
def test_compare_refuses_non_finite_temperatures(text):
    with pytest.raises(ValueError, match=r"all > 0 and finite \(no nan or inf\)"):
        parse_temperatures(text)


def test_generate_cli_prints_one_line_for_a_nan_temperature(capsys):
    assert main(["generate", "--ckpt", "does/not/exist.ckpt", "--temperature", "nan"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "gan-writer generate: error: --temperature must be a finite number > 0, got nan"


def test_fit_refuses_sample_temperature_zero_at_start_up_naming_the_key(tmp_path, capsys, shared_data):
    config = REPO / "experiments/poetry_zh/mle.yaml"
    code = main(["fit", "--config", str(config), f"--trainer.logger.init_args.save_dir={tmp_path}",
                 "--data.init_args.max_train_samples=64", "--model.init_args.sample_temperature=0"])
    assert code == 2
    err = capsys.readouterr().err
    assert "gan-writer fit: error: model.init_args.sample_temperature must be > 0, got 0" in err
    assert not list(tmp_path.rglob("*.ckpt"))  # refused before training, not after


@pytest.mark.parametrize("kwargs, message", [
    ({"group_size": -1}, "model.init_args.group_size must be >= 0, got -1"),
    ({"gamma": 1.5}, r"model.init_args.gamma must be in \[0, 1\], got 1.5"),
    ({"clip_eps": 0}, "model.init_args.clip_eps must be > 0, got 0"),
    ({"ppo_epochs": 0}, "model.init_args.ppo_epochs must be >= 1, got 0"),
    ({"max_sample_batch": 0}, "model.init_args.max_sample_batch must be >= 1, got 0"),
    ({"form_reward_weight": math.inf}, r"model.init_args.form_reward_weight must be a finite number in \[0, 1\], got inf"),
])
def test_the_estimator_options_are_checked_too(kwargs, message):
    with pytest.raises(OptionError, match=message):
        SeqGANModule(init_checkpoint="does/not/exist.ckpt", **kwargs)


def test_adapter_oracle_and_image_options_are_checked():
    from gan_writer.data.oracle import OracleDataModule
    from gan_writer.models.adapters import PeftOptions
    from gan_writer.systems.image_adversarial import ImageAdversarialModule
    from gan_writer.systems.image_mle import ImageMLEModule

    with pytest.raises(OptionError, match="model.init_args.generator.peft.r must be >= 1, got 0"):
        MLEModule(GeneratorConfig(peft=PeftOptions(r=0)))
    with pytest.raises(OptionError, match=r"model.init_args.generator.peft.dropout must be in \[0, 1\), got 1.0"):
        MLEModule({"peft": {"dropout": 1.0}})
    with pytest.raises(OptionError, match="data.init_args.seq_len must be >= 1, got 0"):
        OracleDataModule(oracle_params=None, seq_len=0)
    with pytest.raises(OptionError, match="model.init_args.prefix.prefix_length must be >= 1, got 0"):
        ImageMLEModule(prefix={"prefix_length": 0})
    with pytest.raises(OptionError, match=r"model.init_args.multimodal_weight must be in \[0, 1\], got 2"):
        ImageAdversarialModule(init_checkpoint="does/not/exist.ckpt", multimodal_weight=2)
