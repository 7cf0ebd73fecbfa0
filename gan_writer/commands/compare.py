"""``gan-writer compare --run mle=PATH --run seqgan=PATH``: quality–diversity curves of
several checkpoints under a temperature sweep, and a computed verdict (Caccia et al. 2020,
"Language GANs Falling Short"; the sweep and its outputs are
:func:`gan_writer.analysis.compare_runs.compare`).

Writes to ``--out`` (default ``checkpoints/compare/<timestamp>/``, never an existing
non-empty folder): ``results.csv``, ``samples.csv``, ``results.md``, ``setup.json``,
``verdicts.json``, ``quality_diversity.png`` and a TensorBoard event file.
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys

from gan_writer.analysis.compare_runs import compare
from gan_writer.commands.evaluate import existing_folder
from gan_writer.commands.tool_parser import seed as seed_type

DEFAULT_TEMPERATURES = "0.7,0.8,0.9,1.0,1.1,1.2,1.3,1.5"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", action="append", required=True, metavar="NAME=PATH",
                        help="a run to compare: name and .ckpt or run directory (repeat; at least one)")
    parser.add_argument("--temperatures", default=DEFAULT_TEMPERATURES,
                        help=f"comma-separated softmax temperatures (default {DEFAULT_TEMPERATURES})")
    parser.add_argument("--n", type=int, default=2000, help="samples per run and temperature (default 2000)")
    parser.add_argument("--seed", type=seed_type, default=0, help="sampling seed, the same at every point (default 0)")
    parser.add_argument("--bleu-n", type=int, default=4,
                        help="n of the BLEU-n / Self-BLEU-n axes on real corpora "
                             "(default 4; 2 is SeqGAN's poem setting)")
    parser.add_argument("--baseline", default="mle", help="name of the MLE baseline run (default: mle)")
    parser.add_argument("--out", default=None, help="output folder (default checkpoints/compare/<timestamp>)")
    parser.add_argument("--data-dir", default=None, type=existing_folder, help="corpora folder (default $GAN_WRITER_DATA)")
    parser.add_argument("--keep-samples", type=int, default=20, help="texts per point kept in samples.csv (default 20)")


def parse_runs(specs: list[str]) -> list[tuple[str, str]]:
    """``["mle=PATH", ...]`` → ``[("mle", "PATH"), ...]``. Raises ValueError on a bad or repeated name."""
    out: list[tuple[str, str]] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"--run {spec!r}: expected NAME=PATH, e.g. --run mle=checkpoints/poetry_zh/mle")
        if any(name.strip() == n for n, _ in out):
            raise ValueError(f"--run name {name.strip()!r} is given twice")
        out.append((name.strip(), path.strip()))
    return out


def parse_temperatures(text: str) -> list[float]:
    """``"0.7,1.0"`` → ``[0.7, 1.0]`` (sorted, unique). Raises ValueError unless all are finite and > 0."""
    try:
        temps = sorted({float(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise ValueError(f"--temperatures {text!r}: expected comma-separated numbers such as 0.7,1.0,1.3") from None
    if not temps or not all(math.isfinite(t) and t > 0 for t in temps):
        raise ValueError(f"--temperatures {text!r}: give at least one temperature, all > 0 and finite (no nan or inf)")
    return temps


def command_line(args: argparse.Namespace) -> str:
    """The ``gan-writer compare`` command that reproduces ``args`` (defaults spelled out)."""
    parts = ["gan-writer compare", *(f"--run {shlex.quote(r)}" for r in args.run),
             f"--temperatures {args.temperatures}", f"--n {args.n}", f"--seed {args.seed}", f"--bleu-n {args.bleu_n}",
             f"--baseline {shlex.quote(args.baseline)}", f"--keep-samples {args.keep_samples}"]
    parts += [f"--data-dir {shlex.quote(args.data_dir)}"] if args.data_dir else []
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    try:
        out = compare(parse_runs(args.run), parse_temperatures(args.temperatures), args.n, args.seed, args.bleu_n,
                      args.baseline, args.out, args.data_dir, args.keep_samples,
                      command=command_line(args))
    except (FileNotFoundError, FileExistsError, ValueError, KeyError) as err:
        print(f"gan-writer compare: error: {err}", file=sys.stderr)
        return 2
    report = (out / "results.md").read_text(encoding="utf-8")
    print(report[report.index("## Results"):])
    files = sorted(p.name for p in out.iterdir() if p.is_file() and not p.name.startswith("events.out.tfevents"))
    events = any(p.name.startswith("events.out.tfevents") for p in out.rglob("*"))
    print(f"wrote {out}/: {', '.join(files)}" + (" and a TensorBoard event file" if events else ""))
    return 0
