"""Per-step training values averaged over the steps between two logged points.

Lightning writes ``self.log`` values of a training step to the logger only every
``trainer.log_every_n_steps`` steps, yet each ``self.log`` call and the progress-bar update
after it cost Python time on every step (~3% of an MLE epoch at the SeqGAN oracle's sizes,
issue 18) and record one batch's noisy value. A stage instead adds each step's sums to a
:class:`WindowMeans` (on the device: no host synchronisation) and :func:`log_window` logs
their means once, at the steps the logger writes and at each epoch's last batch, so every step
is in exactly one logged mean; a run that stops between two points (Ctrl-C, ``max_steps``)
ends with the partial mean (:func:`log_window_at_stop`). The window is part of the checkpoint,
so an interrupted and resumed run logs the same numbers as an uninterrupted one.
"""
from __future__ import annotations

import torch

WINDOW_KEY = "gan_writer_window"


class WindowMeans:
    """Weighted sums per key since the last :meth:`pop`: ``mean = Σ value·weight / Σ weight``.

    Example: ``add("train/nll", nll_sum, n_tokens)`` each step gives the token-weighted NLL
    (nats per token) of all the window's tokens, as ``val/nll`` is computed.
    """

    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}  # key -> (2,) float64: [Σ value·weight, Σ weight]

    def add(self, key: str, weighted_sum: torch.Tensor, weight: torch.Tensor | float) -> None:
        """Add one step: ``weighted_sum`` (0-dim tensor, e.g. summed NLL in nats) and its
        ``weight`` (e.g. the number of tokens). Detached; stays on ``weighted_sum``'s device."""
        total = weighted_sum.detach().to(torch.float64)
        pair = torch.stack([total, torch.as_tensor(weight, dtype=torch.float64, device=total.device)])
        self._sums[key] = pair if key not in self._sums else self._sums[key] + pair

    def add_mean(self, key: str, mean: torch.Tensor, weight: torch.Tensor | float) -> None:
        """Add one step's ``mean`` (0-dim tensor) over ``weight`` items (e.g. a batch's accuracy)."""
        self.add(key, mean.detach().to(torch.float64) * weight, weight)

    def means(self) -> dict[str, torch.Tensor]:
        """The window's means (0-dim float32 tensors, one per key with a positive weight)."""
        return {k: (s[0] / s[1]).float() for k, s in self._sums.items() if bool(s[1] > 0)}

    def pop(self) -> dict[str, torch.Tensor]:
        """:meth:`means`, and empty the window."""
        means = self.means()
        self._sums = {}
        return means

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The sums as CPU tensors, for a checkpoint (exact: float64, as accumulated)."""
        return {k: s.detach().cpu() for k, s in self._sums.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> None:
        """Restore :meth:`state_dict`'s sums onto ``device``.

        Raises:
            ValueError: an entry that is not a ``(2,)`` tensor (a checkpoint written by other code).
        """
        for key, s in state.items():
            if not (isinstance(s, torch.Tensor) and s.shape == (2,)):
                raise ValueError(f"checkpoint key {WINDOW_KEY!r}: entry {key!r} is not a (2,) tensor of sums")
        self._sums = {k: s.to(device=device, dtype=torch.float64) for k, s in state.items()}


def logger_writes_now(trainer) -> bool:
    """Whether the logger writes this training step's values (Lightning's own test, which
    its ``LearningRateMonitor`` and ``DeviceStatsMonitor`` use: every ``log_every_n_steps``
    steps, and when the run stops); True where the trainer has no such test."""
    connector = getattr(trainer, "_logger_connector", None)
    return bool(getattr(connector, "should_update_logs", True))


def _write(trainer, means: dict) -> None:
    """Write ``means`` to the loggers now, through Lightning's logger connector (the step
    number and the ``epoch`` Lightning gives the values it writes itself)."""
    connector = getattr(trainer, "_logger_connector", None)
    if means and connector is not None:
        connector.log_metrics(dict(means))


def log_window(module, window: WindowMeans, prog_bar: tuple[str, ...] = ()) -> None:
    """Log ``window``'s means with ``module.log`` and empty it at the steps the logger writes
    (every ``log_every_n_steps``) and at each epoch's last batch, which Lightning's logger does
    not write by itself (written here); otherwise keep accumulating. Call it from
    ``training_step`` after :meth:`WindowMeans.add`: before the callbacks' checkpoints of this
    batch, so those hold the window as it is after the point."""
    trainer = module.trainer
    writes = logger_writes_now(trainer)
    if not (writes or bool(getattr(trainer, "is_last_batch", False))):
        return
    means = window.pop()
    for key, value in means.items():
        module.log(key, value, prog_bar=key in prog_bar)
    if not writes:
        _write(trainer, means)


def log_window_at_stop(module, window: WindowMeans, prog_bar: tuple[str, ...] = ()) -> None:
    """At a batch where the run stops between two points (a Ctrl-C, which the callbacks turn
    into ``trainer.should_stop`` at this batch's end, or ``max_steps`` reached), log the means of
    the batches since the last point without emptying the window: the stopped run's events end
    with that true partial mean (not a repeat of the last point, which Lightning would write at
    a Ctrl-C), and the window stays in the ``last.ckpt`` written at this batch, so a resumed run
    logs what the uninterrupted one does. Call it from ``on_train_batch_end``."""
    trainer = module.trainer
    max_steps = getattr(trainer, "max_steps", -1)
    reached = max_steps is not None and max_steps >= 0 and trainer.global_step >= max_steps
    if not (trainer.should_stop or reached):
        return
    means = window.means()
    for key, value in means.items():
        module.log(key, value, prog_bar=key in prog_bar)
    if not logger_writes_now(trainer):
        _write(trainer, means)
