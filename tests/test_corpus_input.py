"""Corpora in the shapes people have, caught where they enter (issue 16): list-valued and
several text fields, the fortune format, control characters, the corpus-statistics line,
the refusal of a mostly-cut corpus, registered names against local paths, and
corpus_options that came from a config."""
import json
import warnings

import lightning as L
import pytest

from gan_writer.checkpoint import load_artifacts
from gan_writer.data import load_corpus, read_samples
from gan_writer.data.corpora import CorpusOptionError, UnknownCorpusError
from gan_writer.data.datamodule import TextDataModule
from gan_writer.data.readers import CorpusFormatError
from gan_writer.models import GeneratorConfig
from gan_writer.systems.mle import MLEModule

POEMS = [{"title": f"春夜{i}", "author": "李白", "content": [f"床前明月光{i}", "疑是地上霜"]} for i in range(3)]
ESC_FORTUNES = ("\x1b[1;31mA fool and his money\x1b[m are soon parted.\n%\n"
                "Go west, young man.\n  -- Greeley\n%\n\x1b[32mKnow thyself.\x1b[0m\n%\n")


def write_json(tmp_path, items, name="poems.json"):
    p = tmp_path / name
    p.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    return p


def test_a_list_valued_text_field_is_joined_with_line_breaks(tmp_path):
    path = write_json(tmp_path, POEMS)
    assert read_samples(path, text_field="content")[0] == "床前明月光0\n疑是地上霜"


def test_several_text_fields_are_joined_in_order(tmp_path):
    path = tmp_path / "poems.jsonl"
    path.write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in POEMS), encoding="utf-8")
    assert read_samples(path, text_field=["title", "content"])[1] == "春夜1\n床前明月光1\n疑是地上霜"


def test_a_missing_field_lists_the_candidates_and_suggests_none(tmp_path):
    path = write_json(tmp_path, POEMS)
    with pytest.raises(CorpusFormatError) as info:
        read_samples(path, text_field="body")
    msg = str(info.value)
    assert "no key 'body'" in msg and "item 0" in msg
    assert "'title' (a string)" in msg and "'content' (a list of 2 strings)" in msg
    assert "e.g. text_field='title'" not in msg  # the old hint trained silently on titles only


def test_fortune_format_splits_at_percent_lines_and_strips_escapes(tmp_path):
    path = tmp_path / "fortunes"
    path.write_text(ESC_FORTUNES, encoding="utf-8")
    with pytest.warns(UserWarning, match=r"removed 4 terminal escape"):
        splits = load_corpus(str(path), format="fortune",
                             valid_fraction=0.34, test_fraction=0.0)
    samples = sorted(splits.train + splits.valid)
    assert samples == ["A fool and his money are soon parted.", "Go west, young man.\n  -- Greeley", "Know thyself."]
    assert splits.removed_controls == 4


def test_control_characters_never_reach_the_samples_or_the_vocabulary(tmp_path):
    path = tmp_path / "dirty.txt"
    path.write_text("".join(f"\x1b[1mline {i}\x1b[0m with a bell\x07 and NUL\x00\n" for i in range(20)), encoding="utf-8")
    with pytest.warns(UserWarning, match="removed 80 terminal escape sequence"):
        dm = TextDataModule(corpus=str(path), tokenizer="char", max_length=40, batch_size=4)
    texts = dm.texts("train") + dm.texts("valid") + dm.texts("test")
    assert texts and not any(c in t for t in texts for c in "\x1b\x07\x00")
    assert not any(c in tok for tok in dm.tokenizer.get_vocab() for c in "\x1b\x07\x00")
    assert dm.stats.removed_controls == 80


def test_a_fortune_file_read_as_lines_warns_to_use_the_fortune_format(tmp_path):
    path = tmp_path / "fortunes.txt"
    path.write_text(ESC_FORTUNES, encoding="utf-8")
    with pytest.warns(UserWarning, match="format='fortune'"):
        read_samples(path)


def test_a_corpus_mostly_cut_by_max_length_is_refused_with_values_that_fit(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("\n".join(f"{'word ' * 40}end {i}" for i in range(20)), encoding="utf-8")
    with pytest.raises(ValueError) as info:
        TextDataModule(corpus=str(path), tokenizer="word", max_length=10, batch_size=4)
    msg = str(info.value)
    assert "data.max_length=10" in msg and "cut 77%" in msg  # 33 of 43 tokens per sample cut
    assert "Set data.max_length to 43" in msg and "model.generator.n_positions to at least 44" in msg
    TextDataModule(corpus=str(path), tokenizer="word", max_length=43, batch_size=4)  # the advice works


def test_the_statistics_line_is_printed_at_fit_start_and_the_source_recorded(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "poems.txt").write_text("\n".join(f"the cat sat {i}" for i in range(40)), encoding="utf-8")
    dm = TextDataModule(corpus="./mine", tokenizer="word", max_length=4, batch_size=8, valid_fraction=0.25,
                        test_fraction=0.0)
    model = MLEModule(GeneratorConfig(n_layer=1, n_embd=16, n_head=2, n_positions=8), dm.tokenizer, dm.max_length,
                      num_text_samples=0)
    trainer = L.Trainer(max_steps=1, limit_val_batches=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, dm)
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("gan_writer: corpus"))
    # 30 training samples of 4 words (+EOS = 5 tokens, 1 cut by max_length=4): 150 tokens, 20% cut
    assert f"corpus {tmp_path / 'mine'}: 30 training samples" in line and "150 tokens" in line
    assert "20.0% of the tokens cut by data.max_length=4" in line and "vocabulary " in line
    assert "unknown in validation" in line
    ckpt = next(tmp_path.rglob("*.ckpt"))
    meta = load_artifacts(str(ckpt)).meta
    assert meta["corpus"] == str(tmp_path / "mine") and meta["data"]["corpus_source"] == "path"


def test_a_registered_name_means_the_registered_corpus_even_beside_a_same_named_folder(tmp_path, monkeypatch,
                                                                                       shared_data):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shi").mkdir()
    (tmp_path / "shi" / "poems.txt").write_text("\n".join(f"十行之{i}" for i in range(10)), encoding="utf-8")
    dm = TextDataModule(corpus="shi", tokenizer="char", max_length=26, max_train_samples=64)
    assert dm.hparams.corpus == "shi" and dm.hparams.corpus_source == "registered"
    assert len(dm.texts("test")) == 820  # the registered quatrains, not the folder's 10 lines
    local = load_corpus("./shi", valid_fraction=0.2, test_fraction=0.2)
    assert local.source == "path" and len(local.train + local.valid + local.test) == 10


def test_a_local_folder_must_be_written_as_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mydata").mkdir()
    (tmp_path / "mydata" / "a.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")
    with pytest.raises(UnknownCorpusError, match=r"not a registered corpus.*\./mydata"):
        load_corpus("mydata")
    assert load_corpus("./mydata", valid_fraction=0.34, test_fraction=0.0).source == "path"


def test_corpus_options_from_a_config_say_where_they_came_from(tmp_path):
    path = tmp_path / "tales.txt"
    path.write_text("\n".join(f"once upon a time {i}" for i in range(20)), encoding="utf-8")
    with pytest.raises(CorpusOptionError) as info:
        TextDataModule(corpus=str(path), corpus_options={"unit": "paragraph"})
    msg = str(info.value)
    assert "data.corpus_options={'unit': 'paragraph'}" in msg and "unknown option 'unit'" in msg
    assert "--data.init_args.corpus_options=null" in msg


@pytest.mark.parametrize("value", [0, -5])
def test_max_train_samples_zero_or_negative_is_refused(value):
    with pytest.raises(ValueError, match=f"data.init_args.max_train_samples must be >= 1, got {value}"):
        TextDataModule(corpus="shi", max_train_samples=value)
