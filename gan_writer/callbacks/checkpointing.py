"""Every run is saved: a resumable ``last.ckpt`` on a fixed schedule, whatever the
monitored metric does, and when the run is interrupted.

:class:`ResumeCheckpoint` is a Lightning ``ModelCheckpoint`` (same folder, same atomic
write, same ``last-vN.ckpt`` naming when a file is in the way) that owns ``last.ckpt``:

* every ``every_n_train_batches`` training batches (counted over the whole run, resumes
  included) and at the end of every training epoch;
* at the batch where ``trainer.max_steps`` stops the run before its epoch's end (Lightning
  would mark the epoch complete, and a resume with more steps skip its remaining batches);
* on Ctrl-C: the first one lets the current batch finish, writes ``last.ckpt`` at that batch
  boundary (so resuming from it is exact) and stops; a second Ctrl-C stops at once (Lightning's
  ``KeyboardInterrupt``) and still writes one;
* on SIGTERM: Lightning stops at the next batch boundary (``SIGTERMException``) and this
  callback writes ``last.ckpt`` there.

A run that fails (a NaN loss, an error) writes nothing here, so the last good file stays. The
best checkpoint stays with the shipped configs' monitored ``ModelCheckpoint``.
"""
from __future__ import annotations

import signal
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException


class ResumeCheckpoint(ModelCheckpoint):
    """A resumable ``last.ckpt`` every ``every_n_train_batches`` batches, every epoch and on
    Ctrl-C / SIGTERM (see the module docstring).

    Args:
        every_n_train_batches: batches between writes (0 = only at epoch ends and interrupts).
        dirpath: folder of ``last.ckpt`` (default: Lightning's, ``<log_dir>/checkpoints``).

    Attributes:
        interrupted: ``"SIGINT"`` or ``"SIGTERM"`` when the run was stopped by one, else None.
    """

    def __init__(self, every_n_train_batches: int = 100, dirpath: str | None = None) -> None:
        super().__init__(dirpath=dirpath, save_last=True, save_top_k=0, save_on_train_epoch_end=True)
        if every_n_train_batches < 0:
            raise ValueError(f"every_n_train_batches must be >= 0, got {every_n_train_batches}")
        self.every_n_train_batches = every_n_train_batches
        self.interrupted: str | None = None
        self._final_written = False  # last.ckpt written at the batch where max_steps stopped an epoch
        self._stop_requested = False
        self._previous_handler: Any = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(every_n_train_batches=self.every_n_train_batches)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing to restore: this callback tracks no best score, and a resumed run writes its
        ``last.ckpt`` in its own new folder (Lightning's version would warn that the folder
        changed and "best_model_score won't be reloaded", which the BestCheckpoint does restore)."""

    def _write(self, trainer, force: bool = False) -> None:
        if trainer.fast_dev_run or trainer.sanity_checking or trainer.state.fn != "fit":
            return
        if not force and self._last_global_step_saved == trainer.global_step:
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    # ---- schedule ----------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        self._final_written = False  # per fit (a notebook may fit one Trainer twice)
        try:
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread (e.g. a notebook worker): Lightning's default applies
            self._previous_handler = None

    def _on_sigint(self, signum, frame) -> None:
        rank_zero_info("\ngan_writer: Ctrl-C: stopping after this batch and writing last.ckpt (Ctrl-C again: at once)")
        self._stop_requested = True
        signal.signal(signal.SIGINT, self._previous_handler or signal.default_int_handler)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        done = trainer.fit_loop.epoch_loop.batch_progress.total.processed
        if self._stop_requested:
            self._write(trainer, force=True)
            self.interrupted = "SIGINT"  # the BestCheckpoint leaves the validation Lightning runs on the way out
            trainer.should_stop = True
        elif _max_steps_mid_epoch(trainer):
            self._write(trainer, force=True)
            self._final_written = True
        elif self.every_n_train_batches and done % self.every_n_train_batches == 0:
            self._write(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not (self.interrupted or self._final_written):  # else the batch-boundary file is the exact one
            self._write(trainer, force=True)

    def on_validation_end(self, trainer, pl_module) -> None:
        """Nothing: this callback's schedule does not depend on validation."""

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore_handler()
        if not (self.interrupted or self._final_written):  # the finished state (epoch counter = max_epochs)
            self._write(trainer, force=True)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._restore_handler()
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            self.interrupted = "SIGINT" if isinstance(exception, KeyboardInterrupt) else "SIGTERM"
            self._write(trainer, force=True)
            rank_zero_info(f"gan_writer: {self.interrupted}: resumable checkpoint written to {self.last_model_path}")

    def _restore_handler(self) -> None:
        if self._previous_handler is not None:
            try:
                signal.signal(signal.SIGINT, self._previous_handler)
            except ValueError:
                pass
            self._previous_handler = None


def _max_steps_mid_epoch(trainer) -> bool:
    """Whether this batch reaches ``trainer.max_steps`` before its epoch's last batch. Lightning
    then ends the epoch as if it were complete: a ``last.ckpt`` written at the epoch's (or the
    run's) end would resume at the next epoch, skipping this one's remaining batches, so the
    file is written here, at the batch boundary, as on Ctrl-C (and resumes exactly)."""
    max_steps = trainer.max_steps
    return max_steps is not None and max_steps >= 0 and trainer.global_step >= max_steps and not trainer.is_last_batch


def _stopping(trainer) -> bool:
    """Whether a :class:`ResumeCheckpoint` of ``trainer`` is stopping the run for a Ctrl-C or SIGTERM."""
    return any(isinstance(cb, ResumeCheckpoint) and (cb._stop_requested or cb.interrupted) for cb in trainer.callbacks)


VALIDATION_NAMESPACES = ("val/", "metrics/")  # metric keys logged by a validation (README: metric keys)


class BestCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` that keeps tracking the best score across a resume.

    A run resumed with ``--ckpt_path`` writes into a new ``version_N`` folder; Lightning's
    own callback then forgets the best score (its folder changed) and would save the first
    validation after the resume as "best" however bad. This one restores the best score and
    paths from the checkpoint, so only a better model becomes ``best-*.ckpt`` in the new
    folder (the earlier best files stay where they are: Lightning never deletes outside its folder).
    A monitored ``val/`` or ``metrics/`` key saves only the weights its validation scored.
    """

    def on_validation_end(self, trainer, pl_module) -> None:
        """Lightning's save after a validation, except the one Lightning runs on its way out of a
        Ctrl-C / SIGTERM: ``last.ckpt`` was written before it, at the batch boundary (so resuming
        is exact), and names the best file it knew; saving a new best now would delete that file."""
        self._validated_step = trainer.global_step
        if not _stopping(trainer):
            super().on_validation_end(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """Lightning's save at the end of a training epoch, only with a score of these weights: an
        epoch cut short (Ctrl-C, SIGTERM, ``max_steps``) ends without a validation, and its
        ``val/`` or ``metrics/`` value is still the previous validation's, which would make the
        unvalidated weights "best" (and delete the file that earned the score)."""
        fresh = getattr(self, "_validated_step", None) == trainer.global_step
        if _stopping(trainer):
            return
        if fresh or not str(self.monitor or "").startswith(VALIDATION_NAMESPACES):
            super().on_train_epoch_end(trainer, pl_module)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        mine, self.dirpath = self.dirpath, state_dict.get("dirpath", self.dirpath)
        try:
            super().load_state_dict(state_dict)
        finally:
            self.dirpath = mine
        self.last_model_path = ""  # last.ckpt belongs to ResumeCheckpoint
