"""Resuming after a finished epoch when ``trainer.max_steps`` is set (Lightning issue #19617).

Lightning's ``_FitLoop`` treats a checkpoint saved after an epoch finished as a fresh start of
the next epoch, except when ``max_steps`` is set: its ``restarting`` setter then "restarts"
the finished epoch (``... or self._iteration_based_training()``), whose batches are all
marked done, so the resumed run counts a whole epoch without a batch (the data order and
the epoch counter one epoch ahead) or, with ``max_epochs`` reached that way, trains nothing.
:func:`resume_finished_epochs_in_order` gives a trainer's fit loop the setter without that
clause: a finished epoch is not restarted, ``max_steps`` or not, so the run goes on exactly as
the one that was not interrupted (``tests/test_resume.py``). An unfinished epoch restarts as before.
"""
from __future__ import annotations

from lightning.pytorch.loops.fit_loop import _FitLoop
from lightning.pytorch.loops.loop import _Loop

__all__ = ["resume_finished_epochs_in_order"]


class _InOrderFitLoop(_FitLoop):
    """Lightning's fit loop with :func:`resume_finished_epochs_in_order`'s ``restarting``."""

    def _set_restarting(self, restarting: bool) -> None:
        current = self.epoch_progress.current
        epoch_unfinished = any(v != current.processed for v in (current.ready, current.started))
        _Loop.restarting.fset(self, restarting and epoch_unfinished)

    restarting = _Loop.restarting.setter(_set_restarting)


def resume_finished_epochs_in_order(trainer) -> None:
    """Make ``trainer``'s fit loop resume a finished epoch at the next one's start whether or not
    ``max_steps`` is set (see the module docstring). Call it before the loops' state is loaded
    (a LightningModule's ``on_load_checkpoint``); a fit loop other than Lightning's own is left as it is."""
    loop = getattr(trainer, "fit_loop", None)
    if type(loop) is _FitLoop:
        loop.__class__ = _InOrderFitLoop
