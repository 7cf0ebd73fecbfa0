"""``gan-writer reproduce --task poetry_zh``: regenerate a task's published tables from its
shipped configs and seeds, and fail if the README's differ.

The recipe is ``experiments/<task>/reproduce.yaml`` (stages, seeds, overrides, tables). Runs
go to a fresh folder (``checkpoints/reproduce/<task>/<timestamp>/``, never over an existing
one); each table is written between its markers (:mod:`gan_writer.analysis.published`).
Exit status 0: every table regenerated equals the README's; 1: some differ (their diffs are
printed; ``--write`` writes them into the README instead); 2: a user error.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

from gan_writer.analysis.published import compare_table, evaluate_table, splice, table_diffs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="a folder of experiments/ with a reproduce.yaml, e.g. poetry_zh")
    parser.add_argument("--recipe", default="reproduce",
                        help="the recipe's file name in experiments/<task>/ without .yaml (default reproduce; "
                             "e.g. estimators)")
    parser.add_argument("--readme", default=None,
                        help="the file holding the marked tables (default: the recipe's 'document', else README.md)")
    parser.add_argument("--runs", default=None,
                        help="folder for the runs (default checkpoints/reproduce/<task>/<timestamp>; must not exist, "
                             "unless --reuse)")
    parser.add_argument("--reuse", action="store_true",
                        help="skip the runs whose checkpoint already exists under --runs (an interrupted reproduce)")
    parser.add_argument("--write", action="store_true", help="write the regenerated tables into the README")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")


def load_recipe(task: str, root: Path = Path("experiments"), name: str = "reproduce") -> dict:
    """``experiments/<task>/<name>.yaml`` as a dict.

    Raises:
        FileNotFoundError: no recipe (names the file and the tasks that have one).
        ValueError: a recipe without ``runs`` or ``tables``.
    """
    import yaml

    path = root / task / f"{name}.yaml"
    if not path.is_file():
        have = sorted(p.parent.name for p in root.glob(f"*/{name}.yaml"))
        raise FileNotFoundError(f"{path} not found; tasks with a {name}.yaml recipe: {', '.join(have) or 'none'}")
    recipe = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not recipe.get("runs") or not recipe.get("tables"):
        raise ValueError(f"{path}: a recipe needs 'runs' and 'tables'")
    return recipe


def fit_commands(recipe: dict, runs: Path) -> list[tuple[str, int, list[str]]]:
    """``[(run name, seed, gan-writer fit argv)]`` in recipe order; each run saves under
    ``runs/seed_<seed>/`` (its YAML's logger name below that)."""
    out = []
    for run in recipe["runs"]:
        for seed in run["seeds"]:
            fill = {"runs": str(runs), "seed": seed}
            argv = ["fit", "--config", run["config"], f"--seed_everything={seed}",
                    f"--trainer.logger.init_args.save_dir={runs}/seed_{seed}",
                    *[o.format(**fill) for o in run.get("overrides", [])]]
            out.append((run["name"], seed, argv))
    return out


def planned_commands(recipe: dict, runs: Path) -> list[str]:
    """Every command the recipe runs, as ``gan-writer ...`` lines: the fits, then per table the
    evaluations or the compare sweep (what ``--dry-run`` prints)."""
    import shlex

    lines = [f"gan-writer {' '.join(argv)}" for _, _, argv in fit_commands(recipe, runs)]
    for table in recipe["tables"]:
        if "oracle" in table:
            lines.append(f"# NLL-oracle and NLL-test of {table['oracle'].get('n', 10000)} samples per final checkpoint: "
                         + ", ".join(f"{r[1]}" for r in table["rows"]) + f" x seeds {table['seeds']} (table {table['name']})")
            continue
        columns = [(f"{label} seed {seed}", run_dir(recipe, runs, name, seed)) for label, name, seed in table["columns"]]
        if "compare" in table:
            opts = {"bleu_n": 4, **table["compare"]}
            opts.pop("plot", None), opts.pop("report_dir", None)
            lines.append("gan-writer compare " + " ".join(f"--run {shlex.quote(f'{n}={p}')}" for n, p in columns)
                         + f" --temperatures {','.join(f'{float(t):g}' for t in opts['temperatures'])} --n {opts['n']}"
                         f" --seed {opts['seed']} --bleu-n {opts['bleu_n']} --baseline {shlex.quote(columns[0][0])}"
                         f" --out {runs / 'compare' / table['name'].replace('/', '_')}")
        else:
            opts = table["evaluate"]
            lines += [f"gan-writer evaluate --ckpt {p} " + " ".join(f"--{k} {v}" for k, v in opts.items()) for _, p in columns]
    return lines


def run_dir(recipe: dict, runs: Path, name: str, seed: int) -> Path:
    """The run directory a recipe run writes (``runs/seed_S/<logger name>``: the name its
    overrides give ``--trainer.logger.init_args.name``, else its YAML's)."""
    import yaml

    run = next(r for r in recipe["runs"] if r["name"] == name)
    flag = "--trainer.logger.init_args.name="
    given = [o[len(flag):] for o in run.get("overrides", []) if o.startswith(flag)]
    if given:
        return runs / f"seed_{seed}" / given[-1].format(runs=runs, seed=seed)
    logger = (yaml.safe_load(Path(run["config"]).read_text(encoding="utf-8"))["trainer"]["logger"])["init_args"]
    return runs / f"seed_{seed}" / logger["name"]


def reproduce(recipe: dict, runs: Path, readme: Path, *, write: bool = False, reuse: bool = False,
              fit: Callable[[list[str]], int] | None = None,
              evaluate: Callable[..., dict] | None = None,
              compare: Callable[..., Path] | None = None) -> tuple[int, dict[str, str]]:
    """Run the recipe, regenerate its tables, compare them with ``readme``.

    A table with an ``evaluate`` block is the metric table of each column's checkpoint; one
    with a ``compare`` block (``temperatures``, ``n``, ``seed``, optional ``bleu_n``) is a
    temperature sweep of all its columns, the first column the baseline
    (:func:`_compare_table`).

    Args:
        fit: runs one ``gan-writer fit`` argv, returns its exit status (default: the CLI).
        evaluate: ``evaluate(ckpt, n=, references=, seed=)`` (default:
            :func:`gan_writer.commands.evaluate.evaluate_checkpoint`).
        compare: ``compare(runs, temperatures, n=, seed=, bleu_n=, baseline=, out=)`` returning
            the folder holding ``setup.json`` and ``verdicts.json`` (default:
            :func:`gan_writer.analysis.compare_runs.compare`).
    Returns:
        ``(exit status, {table: diff})``: 0 when every table equals the README's (or was
        written with ``write``), 1 when some differ.
    Raises:
        RuntimeError: a stage failed (names it and its command).
    """
    if fit is None:
        from gan_writer.cli import main as fit
    if evaluate is None:
        from gan_writer.commands.evaluate import evaluate_checkpoint as evaluate
    for name, seed, argv in fit_commands(recipe, runs):
        if reuse and _has_checkpoint(run_dir(recipe, runs, name, seed)):
            continue
        print(f"gan-writer reproduce: {name} seed {seed}: gan-writer {' '.join(argv)}", file=sys.stderr)
        if fit(argv) != 0:
            raise RuntimeError(f"{name} seed {seed} failed: gan-writer {' '.join(argv)}")
    tables = {}
    for table in recipe["tables"]:
        if "compare" in table:
            tables[table["name"]] = _compare_table(recipe, runs, table, compare, reuse, write)
            continue
        if "oracle" in table:
            tables[table["name"]] = _oracle_table(runs, table, write)
            continue
        opts = table["evaluate"]
        results = [(label, seed, evaluate(str(run_dir(recipe, runs, name, seed)), **opts))
                   for label, name, seed in table["columns"]]
        tables[table["name"]] = evaluate_table(results)
    if write and recipe.get("oracle_report"):
        _oracle_report(recipe["oracle_report"], runs)
    text = readme.read_text(encoding="utf-8")
    diffs = table_diffs(text, tables, str(readme))
    if write and diffs:
        for name in diffs:
            text = splice(text, name, tables[name], str(readme))
        readme.write_text(text, encoding="utf-8")
        return 0, diffs
    return (1 if diffs else 0), diffs


def _oracle_report(opts: dict, runs: Path) -> None:
    """The recipe's ``oracle_report`` block (``seeds``, ``out``, optional ``num_samples``,
    default 10,000): ``gan-writer oracle-report --cpu --runs-root <runs>`` over the recipe's
    own runs, written to ``out``. It is only written (``--write``), never compared: the report
    also holds wall times.

    Raises:
        RuntimeError: the report failed (its error is printed above).
    """
    from gan_writer.commands import oracle_report

    parser = argparse.ArgumentParser(prog="gan-writer oracle-report")
    oracle_report.add_arguments(parser)
    args = parser.parse_args(["--cpu", "--runs-root", str(runs), "--seeds", ",".join(map(str, opts["seeds"])),
                              "--out", str(opts.get("out", "docs/results/oracle.md")),
                              "--num-samples", str(int(opts.get("num_samples", 10_000)))])
    if oracle_report.run(args) != 0:
        raise RuntimeError(f"gan-writer oracle-report --cpu --runs-root {runs} failed")


def _oracle_table(runs: Path, table: dict, write: bool) -> str:
    """Score the runs of an ``oracle`` block and render it
    (:func:`gan_writer.analysis.oracle_table.oracle_table`); with ``write``, also its PNG
    (``oracle.plot``, when given)."""
    from gan_writer.analysis.oracle_table import oracle_rows, oracle_table, plot_oracle_curves

    print(f"gan-writer reproduce: oracle {table['name']}: NLL-oracle of {len(table['rows'])} runs x "
          f"{len(table['seeds'])} seeds", file=sys.stderr)
    rows = oracle_rows(table, runs)
    if write and table["oracle"].get("plot"):
        plot_oracle_curves(table, rows, runs, table["oracle"]["plot"])
    return oracle_table(table, rows)


def _compare_table(recipe: dict, runs: Path, table: dict, compare: Callable[..., Path] | None, reuse: bool,
                   write: bool = False) -> str:
    """Sweep the table's columns (``<label> seed <seed>`` each; the first is the baseline) into
    ``runs/compare/<table name>`` and render :func:`~gan_writer.analysis.published.compare_table`;
    with ``reuse``, a finished sweep there is read instead of rerun; with ``write``, the
    sweep's plot is copied to ``compare.plot`` and its report (results.md, results.csv, the
    plot) into the folder ``compare.report_dir``, when given."""
    import json
    import shutil

    if compare is None:
        from gan_writer.analysis.compare_runs import compare
    named = [(f"{label} seed {seed}", str(run_dir(recipe, runs, name, seed)), seed) for label, name, seed in table["columns"]]
    out = runs / "compare" / table["name"].replace("/", "_")
    opts = {"bleu_n": 4, **table["compare"]}
    plot, report_dir = opts.pop("plot", None), opts.pop("report_dir", None)
    if not (reuse and (out / "verdicts.json").is_file()):
        print(f"gan-writer reproduce: compare {table['name']}: {len(named)} runs x {len(opts['temperatures'])} "
              f"temperatures, {opts['n']} samples each", file=sys.stderr)
        out = compare([(n, path) for n, path, _ in named], [float(t) for t in opts["temperatures"]], n=opts["n"],
                      seed=opts["seed"], bleu_n=opts["bleu_n"], baseline=named[0][0], out=str(out),
                      command=f"gan-writer reproduce (the {table['name']} block of its recipe; runs in {runs})")
    if write and plot and (Path(out) / "quality_diversity.png").is_file():
        Path(plot).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(out) / "quality_diversity.png", plot)
    if write and report_dir:  # the sweep's own report, published beside the table
        Path(report_dir).mkdir(parents=True, exist_ok=True)
        for name in ("results.md", "results.csv", "quality_diversity.png"):
            if (Path(out) / name).is_file():
                shutil.copyfile(Path(out) / name, Path(report_dir) / name)
    setup = json.loads((out / "setup.json").read_text(encoding="utf-8"))
    records = json.loads((out / "verdicts.json").read_text(encoding="utf-8"))
    return compare_table(setup, records, {n: seed for n, _, seed in named})


def _has_checkpoint(run: Path) -> bool:
    from gan_writer.checkpoint import resolve_checkpoint

    try:
        resolve_checkpoint(run)
    except (FileNotFoundError, ValueError):
        return False
    return True


def run(args: argparse.Namespace) -> int:
    from gan_writer.commands.errors import report

    prog = "gan-writer reproduce"
    try:
        recipe = load_recipe(args.task, name=args.recipe)
        args.readme = args.readme or recipe.get("document", "README.md")
        folder = args.task if args.recipe == "reproduce" else f"{args.task}_{args.recipe}"
        runs = Path(args.runs or f"checkpoints/reproduce/{folder}/{time.strftime('%Y%m%d-%H%M%S')}")
        if args.dry_run:
            for line in planned_commands(recipe, runs):
                print(line)
            return 0
        if runs.exists() and not args.reuse:
            raise FileExistsError(f"{runs} exists; pass another --runs, or --reuse to continue an interrupted reproduce")
        status, diffs = reproduce(recipe, runs, Path(args.readme), write=args.write, reuse=args.reuse)
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError) as err:
        return report(prog, err)
    for name, diff in diffs.items():
        print(diff)
        print(f"{prog}: table {name} {'written to' if args.write else 'differs from'} {args.readme}", file=sys.stderr)
    if not diffs:
        print(f"{prog}: every {args.task} table equals {args.readme} (runs in {runs})", file=sys.stderr)
    return status
