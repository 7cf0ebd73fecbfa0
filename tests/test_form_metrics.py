"""Form metrics on real poems (shared corpora), perturbed copies, and the callback's keys."""
import random

import lightning as L
import pytest
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_writer.callbacks.metrics import TextMetricsCallback
from gan_writer.data.corpora import load_corpus
from gan_writer.data.datamodule import TextDataModule
from gan_writer.metrics.forms import form_metrics
from gan_writer.models import GeneratorConfig
from gan_writer.systems.mle import MLEModule


def _drop_one_character(text: str, rng: random.Random) -> str:
    positions = [i for i, c in enumerate(text) if "\u4e00" <= c <= "\u9fff"]
    i = rng.choice(positions)
    return text[:i] + text[i + 1:]


def test_shi_quatrains_keep_the_form_and_perturbed_copies_do_not(shared_data):
    texts = load_corpus("shi", data_dir=str(shared_data)).test[:300]
    m = form_metrics(texts, "wujue")
    assert m["form_line_ok"] == 1.0 and m["form_syllable_err"] == 0.0
    assert 0.85 < m["form_rhyme_ok"] < 1.0  # real quatrains: most rhyme by 平水韵, a few 古绝 do not
    assert 0.3 < m["form_tone_ok"] < 0.9  # 拗救 and 古绝 break the strict pattern check
    rng = random.Random(0)
    bad = form_metrics([_drop_one_character(t, rng) for t in texts], "wujue")
    assert bad["form_line_ok"] == 0.0 and bad["form_tone_ok"] == 0.0 and bad["form_syllable_err"] == 0.25
    assert form_metrics(texts, "qijue")["form_line_ok"] == 0.0


def test_tang_seven_character_quatrains(shared_data):
    splits = load_corpus("tangshi300", data_dir=str(shared_data), quatrains_only=True, chars_per_line=7)
    poems = splits.train + splits.valid + splits.test
    m = form_metrics(poems, "qijue")
    assert len(poems) > 50 and m["form_line_ok"] == 1.0 and m["form_rhyme_ok"] > 0.9 and m["form_tone_ok"] > 0.7


def test_english_metrics_on_sonnets(shared_data):
    texts = load_corpus("sonnets", data_dir=str(shared_data)).test[:100]
    m = form_metrics(texts, "sonnet")
    assert m["form_line_ok"] > 0.9 and 0.0 < m["form_syllable_err"] < 1.5
    assert "form_tone_ok" not in m
    assert form_metrics(["\n".join(t.split("\n")[:-1]) for t in texts], "sonnet")["form_line_ok"] == 0.0


def test_unknown_form_is_refused():
    with pytest.raises(ValueError, match="unknown form"):
        TextMetricsCallback(form="rondeau")


def test_callback_logs_the_form_keys(tmp_path, shared_data):
    dm = TextDataModule(corpus="shi", tokenizer="char", max_length=26, batch_size=32, max_train_samples=64)
    model = MLEModule(GeneratorConfig(n_layer=1, n_embd=16, n_head=2, n_positions=32), dm.tokenizer, dm.max_length,
                      num_text_samples=0)
    logger = TensorBoardLogger(tmp_path, name="run", default_hp_metric=False)
    trainer = L.Trainer(max_epochs=1, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=1, log_every_n_steps=1,
                        callbacks=[TextMetricsCallback(num_samples=20, num_text_samples=0, bleu=False, form="wujue")])
    trainer.fit(model, dm)
    ea = EventAccumulator(logger.log_dir)
    ea.Reload()
    for key in ("metrics/form_line_ok", "metrics/form_tone_ok", "metrics/form_rhyme_ok", "metrics/form_syllable_err"):
        values = [e.value for e in ea.Scalars(key)]
        assert values, key
    assert 0.0 <= ea.Scalars("metrics/form_line_ok")[-1].value <= 1.0
    assert ea.Scalars("metrics/form_syllable_err")[-1].value >= 0.0
