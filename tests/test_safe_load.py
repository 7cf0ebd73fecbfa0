"""Files from others are data: a checkpoint, oracle pickle or model folder that would run
code is refused in one line through every entry point, and the marker its payload would
create never appears."""
import json
import os
import pickle

import numpy as np
import pytest
import torch

from gan_writer.cli import main
from gan_writer.safe_load import UnsafeFileError, load_checkpoint, load_numpy_pickle, refuse_remote_code
from tiny_runs import REPO, disc_args, fit, mle_args


class Payload:
    """Creates ``marker`` when unpickled (what a hostile checkpoint would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("safe")
    fit(mle_args(root))
    mle = root / "poetry_zh" / "mle"
    good = mle / "version_0" / "checkpoints" / "last.ckpt"
    marker = root / "MARKER"
    ckpt = torch.load(good, weights_only=True)
    ckpt["extra"] = Payload(marker)
    evil = root / "evil.ckpt"
    torch.save(ckpt, evil)
    return root, mle, evil, marker


def one_error_line(err: str, tool: str) -> str:
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"gan-writer {tool}: error:" in lines[0]
    return lines[0]


def entry_points(root, mle, evil):
    shi = ["--trainer.max_steps=1"]
    oracle_root = root / "oracle_runs"
    version = oracle_root / "seed_0" / "mle" / "version_0"
    (version / "checkpoints").mkdir(parents=True, exist_ok=True)
    (version / "checkpoints" / "last.ckpt").write_bytes(evil.read_bytes())
    (version / "config.yaml").write_text("trainer:\n  max_epochs: 1\n")
    return {
        "generate": ["generate", "--ckpt", str(evil), "--n", "1"],
        "evaluate": ["evaluate", "--ckpt", str(evil), "--n", "2"],
        "compare": ["compare", "--run", f"a={evil}", "--out", str(root / "cmp"), "--n", "2"],
        "init_checkpoint": mle_args(root / "a", f"--model.init_args.init_checkpoint={evil}",
                                    f"--data.init_args.tokenizer={mle}", *shi),
        "data.tokenizer": mle_args(root / "b", f"--data.init_args.tokenizer={evil}", *shi),
        "discriminator_checkpoint": disc_args(root / "c", mle, f"--model.init_args.discriminator_checkpoint={evil}"),
        "oracle-report": ["oracle-report", "--runs-root", str(oracle_root), "--seeds", "0", "--configs",
                          str(REPO / "experiments/oracle/cpu"), "--out", str(root / "oracle.md"), "--num-samples", "4"],
        "ckpt_path": mle_args(root / "d", f"--ckpt_path={evil}"),
    }


@pytest.mark.parametrize("entry", ["generate", "evaluate", "compare", "init_checkpoint", "data.tokenizer",
                                   "discriminator_checkpoint", "oracle-report", "ckpt_path"])
def test_a_checkpoint_that_runs_code_is_refused_everywhere(runs, entry, capsys):
    root, mle, evil, marker = runs
    argv = entry_points(root, mle, evil)[entry]
    rc = main(argv)
    err = capsys.readouterr().err
    assert not marker.exists()
    assert rc == 2
    line = one_error_line(err, argv[0])
    assert "posix.system" in line and "refused" in line and ("evil.ckpt" in line or "last.ckpt" in line)


def test_the_real_checkpoint_still_loads_with_weights_only(runs):
    _, mle, _, _ = runs
    ckpt = load_checkpoint(mle / "version_0" / "checkpoints" / "last.ckpt")
    assert ckpt["gan_writer"]["stage"] == "MLEModule" and ckpt["state_dict"]


def test_project_configs_in_hyperparameters_are_allowed(tmp_path):
    from gan_writer.models import GeneratorConfig
    from gan_writer.systems.discriminator import DiscriminatorConfig

    path = tmp_path / "h.ckpt"
    torch.save({"hyper_parameters": {"generator": GeneratorConfig(n_layer=3), "discriminator": DiscriminatorConfig()}}, path)
    loaded = load_checkpoint(path)["hyper_parameters"]
    assert loaded["generator"].n_layer == 3 and loaded["discriminator"].kind == "cnn"


def test_oracle_pickle_admits_only_numpy_arrays(tmp_path):
    from gan_writer.models.oracle import OracleLSTM

    marker = tmp_path / "MARKER"
    bad = tmp_path / "target_params.pkl"
    bad.write_bytes(pickle.dumps([np.zeros((3, 2), np.float32), Payload(marker)]))
    with pytest.raises(UnsafeFileError, match=r"target_params.pkl: refused to load: it needs posix.system"):
        OracleLSTM.from_pickle(bad)
    assert not marker.exists()
    good = tmp_path / "arrays.pkl"
    arrays = [np.arange(6, dtype=np.float32).reshape(3, 2), np.ones(4)]
    good.write_bytes(pickle.dumps(arrays, protocol=2))
    back = load_numpy_pickle(good)
    assert np.array_equal(back[0], arrays[0]) and np.array_equal(back[1], arrays[1])


def test_model_folder_with_auto_map_is_refused(tmp_path):
    from transformers import GPT2Config

    from gan_writer.models import Generator
    from gan_writer.tokenization import pretrained_tokenizer, tokenizer_from_dict

    GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=10).save_pretrained(tmp_path)
    refuse_remote_code(tmp_path)  # a plain folder passes
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "evil.EvilModel"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsafeFileError, match=r"config.json: refused: its auto_map \['AutoModelForCausalLM'\]"):
        Generator.from_pretrained(str(tmp_path))
    with pytest.raises(UnsafeFileError, match="auto_map"):
        pretrained_tokenizer(str(tmp_path))
    # a checkpoint's stored tokenizer files asking for code are refused too
    with pytest.raises(UnsafeFileError, match="tokenizer_config.json: refused"):
        tokenizer_from_dict({"tokenizer_config.json": json.dumps({"auto_map": {"AutoTokenizer": ["evil.Tok", None]}})})


def test_a_multimodal_discriminator_checkpoint_is_read_without_running_code(runs):
    from gan_writer.systems.image_adversarial import load_multimodal_discriminator

    root, _, evil, marker = runs
    with pytest.raises(UnsafeFileError, match="posix.system"):
        load_multimodal_discriminator(str(evil))
    assert not marker.exists()


def test_a_file_that_is_not_a_checkpoint_says_why_in_one_line(tmp_path, capsys):
    """Bytes that are neither torch.save's zip nor a pickle: one line naming the file and a
    non-empty reason (the unpickler's own message is empty for such files)."""
    bad = tmp_path / "bad.ckpt"
    bad.write_text("garbage")
    assert main(["generate", "--ckpt", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"gan-writer generate: error: {bad} is not a readable PyTorch checkpoint: ")
    assert err[0].split("checkpoint: ", 1)[1].strip() not in ("", "Unpickler error:")


def _cut_short(tmp_path, name, **save):
    whole = tmp_path / f"whole_{name}"
    torch.save({"state_dict": {"w": torch.arange(4096.0)}}, whole, **save)
    data = whole.read_bytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize("content, reason", [
    (b"", "the file is empty (0 bytes): it was not written completely"),
    (b"hello, world", "neither a zip archive nor a pickle as torch.save writes (it starts with 'hello, world')"),
    (b"hello\n", "neither a zip archive nor a pickle as torch.save writes (it starts with 'hello')"),
    (bytes(range(200, 256)) * 20,
     "neither a zip archive nor a pickle as torch.save writes (it starts with binary data)"),
    ("zip", "a zip archive as torch.save writes, but damaged or cut short"),
    ("pickle", "a pickle, but damaged, cut short or not written by torch.save"),
])
def test_each_kind_of_unreadable_file_gets_its_own_reason(tmp_path, capsys, content, reason):
    """Empty, text, random bytes, a zip or legacy pickle checkpoint cut in half: one line naming the
    file, what it is and what to do; none of torch's own text (miniz, EOFError, a bare byte value)."""
    if content == "zip":
        content = _cut_short(tmp_path, "zip")
    elif content == "pickle":
        content = _cut_short(tmp_path, "pickle", _use_new_zipfile_serialization=False)
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content)
    assert main(["generate", "--ckpt", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"gan-writer generate: error: {bad} is not a readable PyTorch checkpoint: {reason}")
    assert not any(word in err[0] for word in ("miniz", "EOFError", "Unpickler"))
