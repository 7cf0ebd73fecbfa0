"""Read TensorBoard event files of training runs and compare outputs.

All reading goes through TensorBoard's own
``tensorboard.backend.event_processing.event_accumulator.EventAccumulator`` (no parser of
the event format here). A *run directory* is a folder holding ``events.out.tfevents.*``
files, e.g. ``checkpoints/poetry_zh/mle/version_0`` (Lightning's TensorBoardLogger) or a
``gan-writer compare`` output folder.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

__all__ = ["checkpoints_dir", "newest_compare_file", "find_runs", "newest_runs", "resolve_runs", "run_label", "run_labels", "load_scalars", "load_images",
           "load_texts", "group_tags", "TAG_GROUPS", "OTHER_GROUP"]

#: Tag groups for training-curve plots: group name → regular expression on the tag.
TAG_GROUPS = {
    "NLL metrics": r"nll_test|nll_oracle|nll_gen",
    "discriminator": r"(^|/)(disc|d_)|discriminator|acc",
    "losses": r"loss|(^|/)(nll|ppl)$",
    "rewards": r"reward",
    "quality (BLEU)": r"(^|/)bleu_\d",
    "diversity (Self-BLEU, distinct-n)": r"self_bleu_\d|distinct_\d|unique_samples",
    "forms": r"(^|/)form_",
    "samples": r"empty_samples|top_sample_share|sample_length",
    "adversarial (KL to MLE, gradients, advantages)": r"^adv/",
}
#: :func:`group_tags`' group for a tag that matches none of :data:`TAG_GROUPS` (nothing logged is left out).
OTHER_GROUP = "other"


def _accumulator(run_dir: str | Path):
    from tensorboard.backend.event_processing import event_accumulator as ea

    run_dir = Path(run_dir)
    if not run_dir.is_dir() or not any(run_dir.glob("events.out.tfevents.*")):
        raise FileNotFoundError(f"no TensorBoard event file (events.out.tfevents.*) in {run_dir}")
    acc = ea.EventAccumulator(str(run_dir), size_guidance={ea.SCALARS: 0, ea.IMAGES: 0, ea.TENSORS: 0})
    acc.Reload()
    return acc


def find_runs(root: str | Path, exclude: Sequence[str] = ()) -> list[Path]:
    """Every folder under ``root`` (itself included) holding event files, sorted by path.

    Args:
        root: a folder, e.g. ``checkpoints``.
        exclude: folder names to skip anywhere in the path (e.g. ``("compare",)``).
    """
    root = Path(root)
    dirs = {p.parent for p in root.rglob("events.out.tfevents.*")} if root.is_dir() else set()
    return sorted(d for d in dirs if not set(d.relative_to(root).parts) & set(exclude))


def checkpoints_dir(start: str | Path | None = None) -> Path:
    """The runs' root a notebook reads by default: ``$GAN_WRITER_CHECKPOINTS`` if set, else the
    ``checkpoints`` folder in ``start`` (default: the working directory) or in its parent, the
    repository root when a notebook's kernel starts in ``notebooks/`` (Jupyter's default);
    ``start/checkpoints`` when neither exists."""
    import os

    if os.environ.get("GAN_WRITER_CHECKPOINTS"):
        return Path(os.environ["GAN_WRITER_CHECKPOINTS"])
    start = Path.cwd() if start is None else Path(start)
    return next((d / "checkpoints" for d in (start, start.parent) if (d / "checkpoints").is_dir()), start / "checkpoints")


def newest_compare_file(name: str = "results.csv", root: str | Path | None = None) -> Path:
    """The newest ``gan-writer compare`` output file ``name`` (``results.csv``, ``samples.csv``)
    under ``root/compare/*/`` (``root``: :func:`checkpoints_dir`).

    Raises:
        FileNotFoundError: none there; the message says which variable to set instead.
    """
    root = checkpoints_dir() if root is None else Path(root)
    found = list((root / "compare").glob(f"*/{name}"))
    if not found:
        raise FileNotFoundError(f"no compare output ({name}) under {root / 'compare'}: run gan-writer compare "
                                "(its default --out is there), or set GAN_WRITER_COMPARE_CSV to a results.csv "
                                "(GAN_WRITER_CHECKPOINTS to the folder that holds compare/)")
    return max(found, key=lambda p: p.stat().st_mtime)


def newest_runs(root: str | Path = "checkpoints", k: int = 2, exclude: Sequence[str] = ("compare",)) -> list[Path]:
    """The ``k`` run folders under ``root`` whose event files changed last, oldest first."""
    runs = find_runs(root, exclude)
    runs.sort(key=lambda d: max(f.stat().st_mtime for f in d.glob("events.out.tfevents.*")))
    return runs[-k:] if k else runs


def resolve_runs(paths: Sequence[str | Path]) -> list[Path]:
    """Run folders from paths that are run folders or hold some (``checkpoints/poetry_zh/mle``
    gives each of its ``version_N``), in the order given.

    Raises:
        FileNotFoundError: naming a path with no event file under it.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        found = [p] if any(p.glob("events.out.tfevents.*")) else find_runs(p)
        if not found:
            raise FileNotFoundError(f"no TensorBoard event file (events.out.tfevents.*) in or under {p}")
        out += [d for d in found if d not in out]
    return out


def run_label(run_dir: str | Path, root: str | Path | None = None) -> str:
    """A short name for a run folder: its path relative to ``root``, else its last 3 parts."""
    run_dir = Path(run_dir)
    if root is not None:
        try:
            return str(run_dir.relative_to(root))
        except ValueError:
            pass
    return "/".join(run_dir.parts[-3:])


def run_labels(run_dirs: Sequence[str | Path]) -> list[str]:
    """Distinct short names for several run folders: paths relative to their common
    parent (``a/poetry_zh/mle/version_0``, ``b/...``); one folder gets :func:`run_label`."""
    import os

    dirs = [Path(d).resolve() for d in run_dirs]
    if len(dirs) < 2:
        return [run_label(d) for d in dirs]
    common = Path(os.path.commonpath(dirs))
    return [str(d.relative_to(common)) if d != common else d.name for d in dirs]


def load_scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series of a run: ``{tag: [(step, value), ...]}`` in step order.

    Raises:
        FileNotFoundError: if ``run_dir`` holds no event file.
    """
    acc = _accumulator(run_dir)
    return {tag: [(int(e.step), float(e.value)) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def load_images(run_dir: str | Path) -> dict[str, list[tuple[int, int, int, bytes]]]:
    """Image summaries: ``{tag: [(step, width, height, encoded PNG bytes), ...]}``.

    Raises:
        FileNotFoundError: if ``run_dir`` holds no event file.
    """
    acc = _accumulator(run_dir)
    return {tag: [(int(e.step), int(e.width), int(e.height), e.encoded_image_string) for e in acc.Images(tag)]
            for tag in acc.Tags()["images"]}


def load_texts(run_dir: str | Path) -> dict[str, list[tuple[int, str]]]:
    """Text summaries (``SummaryWriter.add_text``, e.g. the sampled poems):
    ``{tag: [(step, text), ...]}``, the ``/text_summary`` suffix removed.

    Raises:
        FileNotFoundError: if ``run_dir`` holds no event file.
    """
    from tensorboard.util import tensor_util

    acc = _accumulator(run_dir)
    out: dict[str, list[tuple[int, str]]] = {}
    for tag in acc.Tags()["tensors"]:
        if not tag.endswith("/text_summary"):
            continue
        items = []
        for e in acc.Tensors(tag):
            arr = tensor_util.make_ndarray(e.tensor_proto)
            value = arr.item() if arr.size == 1 else b"\n".join(arr.ravel().tolist())
            items.append((int(e.step), value.decode("utf-8") if isinstance(value, bytes) else str(value)))
        out[tag[: -len("/text_summary")]] = items
    return out


def group_tags(tags: Sequence[str], groups: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Sort scalar tags into the groups of :data:`TAG_GROUPS` (first match wins), and a tag
    that matches none into :data:`OTHER_GROUP`, last; groups with no tag are left out;
    ``epoch``, ``hp_metric`` and timing tags (``*seconds``) are dropped."""
    groups = TAG_GROUPS if groups is None else groups
    out: dict[str, list[str]] = {name: [] for name in [*groups, OTHER_GROUP]}
    for tag in sorted(tags):
        if tag in ("epoch", "hp_metric") or tag.endswith("seconds"):
            continue
        name = next((name for name, pattern in groups.items() if re.search(pattern, tag)), OTHER_GROUP)
        out[name].append(tag)
    return {k: v for k, v in out.items() if v}
