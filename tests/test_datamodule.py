"""TextDataModule: batches, masks, tiny corpora, bad input, tokenizer reuse from a checkpoint."""

import lightning as L
import pytest
import torch

from gan_writer.data.datamodule import TextDataModule, pad_batch
from gan_writer.models import GeneratorConfig
from gan_writer.systems.mle import MLEModule


def test_batches_hold_eos_terminated_rows_with_masks(shared_data):
    dm = TextDataModule(corpus="shi", tokenizer="char", max_length=26, batch_size=16, max_train_samples=64)
    batch = next(iter(dm.train_dataloader()))
    ids, mask = batch["ids"], batch["attention_mask"]
    assert ids.shape == (16, 25) and mask.shape == (16, 25)  # 24 characters + EOS
    assert (ids[:, -1] == dm.tokenizer.eos_token_id).all() and mask.all()
    assert dm.metric_tokenization == "char" and len(dm.texts("test")) == 820


def test_pad_batch_pads_right_and_masks():
    out = pad_batch([[5, 6, 2], [7, 2]], pad_token_id=0)
    assert out["ids"].tolist() == [[5, 6, 2], [7, 2, 0]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]


def test_long_samples_are_cut_with_a_warning(shared_data):
    with pytest.warns(UserWarning, match="longer than data.max_length=20"):  # 5 of 25 tokens cut: a warning
        dm = TextDataModule(corpus="shi", tokenizer="char", max_length=20, max_train_samples=32)
    assert max(len(r) for r in dm.datasets["train"].ids) == 20


def test_a_corpus_smaller_than_one_batch_trains_one_smaller_batch(tmp_path):
    f = tmp_path / "tiny.txt"
    f.write_text("\n".join(f"the cat sat on mat number {i}" for i in range(12)), encoding="utf-8")
    with pytest.warns(UserWarning, match="fewer than data.batch_size=64"):
        dm = TextDataModule(corpus=str(f), tokenizer="word", batch_size=64, max_length=16)
    assert len(dm.train_dataloader()) == 1
    model = MLEModule(GeneratorConfig(n_layer=1, n_embd=16, n_head=2, n_positions=32), dm.tokenizer, dm.max_length,
                      num_text_samples=0)
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(model, dm)
    assert trainer.global_step == 2  # one (smaller) batch per epoch, no zero-batch epoch
    assert torch.isfinite(trainer.callback_metrics["val/nll"])


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.txt"):
        TextDataModule(corpus=str(tmp_path / "nothere.txt"))


def test_all_blank_corpus_is_an_error(tmp_path):
    f = tmp_path / "blank.txt"
    f.write_text("\n   \n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="blank.txt"):
        TextDataModule(corpus=str(f))


def test_undecodable_bytes_name_line_offset_and_encoding(tmp_path):
    f = tmp_path / "gbk.txt"
    f.write_bytes("床前明月光\n疑是地上霜\n".encode("gbk"))
    with pytest.raises(ValueError) as err:
        TextDataModule(corpus=str(f))
    msg = str(err.value)
    assert "gbk.txt" in msg and "line 1" in msg and "byte" in msg and "encoding" in msg
    dm = TextDataModule(corpus=str(f), encoding="gbk", valid_fraction=0.5, test_fraction=0.0, tokenizer="char")
    assert sorted(dm.texts("train") + dm.texts("valid")) == sorted(["床前明月光", "疑是地上霜"])


def test_single_sample_corpus_says_what_to_change(tmp_path):
    f = tmp_path / "one.txt"
    f.write_text("only one line here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="at least 2 samples"):
        TextDataModule(corpus=str(f))


def test_a_user_file_is_recorded_by_absolute_path(tmp_path, monkeypatch):
    (tmp_path / "mine.txt").write_text("\n".join(f"line {i} of text" for i in range(20)), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    dm = TextDataModule(corpus="mine.txt", tokenizer="word", batch_size=4, max_length=8)
    assert dm.hparams.corpus == str(tmp_path / "mine.txt")


def test_bad_batch_size_names_the_key():
    with pytest.raises(ValueError, match="data.init_args.batch_size must be >= 1, got 0"):
        TextDataModule(batch_size=0)


def test_cli_reports_a_corpus_error_in_one_line(tmp_path, capsys, shared_data):
    from pathlib import Path

    from gan_writer.cli import main

    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    config = Path(__file__).resolve().parents[1] / "experiments/coco/mle.yaml"
    assert main(["fit", "--config", str(config), f"--data.init_args.corpus={empty}", "--trainer.fast_dev_run=true"]) == 2
    err = capsys.readouterr().err
    assert f"gan-writer fit: error: {empty} is empty" in err and "Traceback" not in err
