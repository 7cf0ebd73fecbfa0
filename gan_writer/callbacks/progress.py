"""The progress bars of the stages: Lightning's own, less its noise.

Lightning's bars show the logger's version as ``v_num: 0.000`` beside the losses (a float
format applied to a run number); the run folder is printed when the run ends
(``gan-writer: run saved in .../version_N``), so the bars drop it. Otherwise these are
Lightning's :class:`~lightning.pytorch.callbacks.RichProgressBar` and
:class:`~lightning.pytorch.callbacks.TQDMProgressBar` unchanged.
"""
from __future__ import annotations

from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar


class _WithoutVersion:
    def get_metrics(self, trainer, pl_module):  # noqa: D102 - Lightning's hook, less ``v_num``
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items


class QuietRichProgressBar(_WithoutVersion, RichProgressBar):
    """Lightning's rich progress bar without ``v_num``."""


class QuietTQDMProgressBar(_WithoutVersion, TQDMProgressBar):
    """Lightning's tqdm progress bar without ``v_num``."""


def quiet_default_bar(callbacks: list) -> None:
    """Lightning's own bars in ``callbacks`` (its default, or one configured with arguments) lose
    ``v_num`` in place: the same object, its arguments and state kept, as the subclass without it
    (no attributes added, so the class swap is safe). Subclasses the user wrote are left alone."""
    for callback in callbacks:
        if type(callback) is RichProgressBar:
            callback.__class__ = QuietRichProgressBar
        elif type(callback) is TQDMProgressBar:
            callback.__class__ = QuietTQDMProgressBar
