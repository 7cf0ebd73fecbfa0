"""Hostile checkpoints with entries of the wrong type are refused in one line (no AttributeError)."""
import pytest
import torch

from gan_writer.resume import check_ckpt_path
from gan_writer.safe_load import KEY, CorruptCheckpointError, load_checkpoint, seal


def _ckpt():
    c = {"state_dict": {"generator.w": torch.ones(2)}, "gan_writer": {"stage": "MLEStage", "generator_spec": {}}}
    seal(c)
    return c


@pytest.mark.parametrize("edit", [
    lambda c: c.__setitem__("gan_writer", [1, 2]),
    lambda c: c.__setitem__("gan_writer", "x"),
    lambda c: c.__setitem__("gan_writer", None),
    lambda c: c["gan_writer"].__setitem__("checksum", "abc"),
    lambda c: c["gan_writer"].__setitem__("checksum", {"sha256": 5}),
    lambda c: c.__setitem__("state_dict", [torch.ones(2)]),
    lambda c: c["state_dict"].__setitem__("generator.b", 5),
])
def test_wrong_types_refused_in_one_line(tmp_path, edit):
    c = _ckpt()
    edit(c)
    p = tmp_path / "bad.ckpt"
    torch.save(c, p)
    for load in (lambda: load_checkpoint(p), lambda: check_ckpt_path(str(p), "x.MLEStage")):
        with pytest.raises(CorruptCheckpointError, match="is malformed") as err:
            load()
        assert "\n" not in str(err.value)


def test_good_checkpoint_still_loads(tmp_path):
    p = tmp_path / "good.ckpt"
    torch.save(_ckpt(), p)
    load_checkpoint(p)
    check_ckpt_path(str(p), "x.MLEStage")


def test_option_checks_refuse_huge_ints_and_non_mappings():
    from gan_writer.systems.options import GENERATOR_RANGES, OptionError, check_option, check_options

    with pytest.raises(OptionError, match="64 bits"):
        check_option("model.init_args.g_steps", 10**400, ">= 0")
    for bad in ("lora", 5, [1]):
        with pytest.raises(OptionError, match="generator.peft must be a mapping"):
            check_options("model.init_args.generator", {"peft": bad}, GENERATOR_RANGES)


@pytest.mark.parametrize("files", [["tokenizer.json"], {}, {"..": "x"}, {"/": "x"}, {"tokenizer.json": 5}])
def test_tampered_tokenizer_entry_refused_in_one_line(files):
    from gan_writer.tokenization import tokenizer_from_dict

    with pytest.raises(ValueError, match="tokenizer entry is not a mapping"):
        tokenizer_from_dict(files)


def test_spec_larger_than_the_weights_refused_before_allocating(tmp_path):
    from helpers import tiny_gpt2

    from gan_writer.checkpoint import load_artifacts, payload

    gen, tok = tiny_gpt2(), None
    ckpt = {"state_dict": {f"generator.{k}": v for k, v in gen.state_dict().items()},
            KEY: payload(gen, tok, stage="MLEStage")}
    seal(ckpt)
    good = tmp_path / "good.ckpt"
    torch.save(ckpt, good)
    assert load_artifacts(good).generator is not None
    ckpt[KEY]["generator_spec"]["hf_config"]["n_layer"] = 50
    ckpt[KEY]["generator_spec"]["hf_config"]["n_embd"] = 1024
    bad = tmp_path / "bad.ckpt"
    torch.save(ckpt, bad)
    with pytest.raises(ValueError, match="describes .* parameters but the checkpoint holds"):
        load_artifacts(bad)


@pytest.mark.parametrize("identity", [None, {}, {"name": "x", "path": "/nope"}, {"name": 5, "path": "/p", "size": 1, "sha256": "a"}])
def test_damaged_adapter_base_record_refused_in_one_line(identity):
    from gan_writer.models.pretrained_base import check_base

    with pytest.raises(ValueError, match="base record is not"):
        check_base(identity)


def test_missing_adapter_base_says_what_to_do(tmp_path):
    from gan_writer.models.pretrained_base import check_base

    with pytest.raises(FileNotFoundError, match="is missing"):
        check_base({"name": str(tmp_path / "gone"), "path": str(tmp_path / "gone"), "size": 1, "sha256": "ab"})
