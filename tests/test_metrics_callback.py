"""TextMetricsCallback outside the CLI: its schedule, and the final model always scored."""
import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_writer.callbacks.metrics import TextMetricsCallback
from gan_writer.data.datamodule import TextDataModule
from gan_writer.models import GeneratorConfig
from gan_writer.systems.mle import MLEModule


def fit(tmp_path, max_epochs):
    dm = TextDataModule(corpus="shi", tokenizer="char", max_length=26, batch_size=32, max_train_samples=64)
    model = MLEModule(GeneratorConfig(n_layer=1, n_embd=16, n_head=2, n_positions=32), dm.tokenizer, dm.max_length,
                      num_text_samples=0)
    logger = TensorBoardLogger(tmp_path, name="run", default_hp_metric=False)
    trainer = L.Trainer(max_epochs=max_epochs, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=1, log_every_n_steps=1,
                        callbacks=[TextMetricsCallback(num_samples=20, every_n_val_epochs=2, num_text_samples=2)])
    trainer.fit(model, dm)
    ea = EventAccumulator(logger.log_dir)
    ea.Reload()
    return ea, trainer.global_step


def test_scored_at_every_other_validation(tmp_path, shared_data):
    ea, last = fit(tmp_path, max_epochs=3)  # validations after steps 2, 4, 6: scored at the 1st and 3rd
    steps = [e.step for e in ea.Scalars("metrics/bleu_2")]
    assert len(steps) == 2 and steps[-1] in (last - 1, last)
    assert [e.step for e in ea.Scalars("val/nll_test")] == steps


def test_the_final_model_is_scored_when_its_validation_is_skipped(tmp_path, shared_data):
    ea, last = fit(tmp_path, max_epochs=2)  # the 2nd validation is skipped: scored at the end of training
    steps = [e.step for e in ea.Scalars("metrics/bleu_2")]
    # at the last batch's 0-based index, as train/nll and an epoch-end validation (not one past it)
    assert len(steps) == 2 and steps[-1] == last - 1 == max(e.step for e in ea.Scalars("train/nll"))
    assert [e.step for e in ea.Tensors("metrics/samples/text_summary")] == steps  # the text samples too
    assert 0.0 <= ea.Scalars("metrics/bleu_2")[-1].value <= 1.0


def test_a_temperature_of_one_in_the_list_is_scored_once(tmp_path, shared_data, monkeypatch):
    import gan_writer.callbacks.metrics as metrics

    temps = []
    real = metrics.sample_texts
    monkeypatch.setattr(metrics, "sample_texts", lambda *a, temperature, **k: temps.append(temperature) or real(
        *a, temperature=temperature, **k))
    dm = TextDataModule(corpus="shi", tokenizer="char", max_length=26, batch_size=32, max_train_samples=64)
    dm.setup("fit")
    model = MLEModule(GeneratorConfig(n_layer=1, n_embd=16, n_head=2, n_positions=32), dm.tokenizer, dm.max_length,
                      num_text_samples=0)
    cb = TextMetricsCallback(num_samples=4, temperatures=[0.7, 1.0, 0.7], num_text_samples=0)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.datamodule = dm
    cb.setup(trainer, model, "fit")
    out = cb.evaluate(trainer, model)
    assert temps == [1.0, 0.7] and "metrics/bleu_2" in out and "metrics/temp_0.7/bleu_2" in out
