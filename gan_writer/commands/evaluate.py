"""``gan-writer evaluate --ckpt PATH``: the metric table of a checkpoint, printed and as JSON."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gan_writer.checkpoint import load_artifacts, resolve_checkpoint
from gan_writer.commands.tool_parser import seed as seed_type
from gan_writer.data.datamodule import EncodedTexts, pad_batch
from gan_writer.metrics.bleu import BleuReference
from gan_writer.metrics.forms import form_metrics
from gan_writer.metrics.nll import corpus_nll
from gan_writer.metrics.suite import BLEU_ORDERS, metric_tokenizer, sample_texts, text_metrics
from gan_writer.systems.options import check_option
from gan_writer.writing.forms import get_form


def existing_folder(value: str) -> str:
    """``--data-dir``: a folder that exists (argparse type; a missing one was silently skipped)."""
    if not Path(value).expanduser().is_dir():
        raise argparse.ArgumentTypeError(f"{value} is not a folder; give the folder that holds the corpora")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", required=True, help="a .ckpt or a run directory")
    parser.add_argument("--n", type=int, default=2000, help="samples to draw (default 2000)")
    parser.add_argument("--references", default="test", choices=["test", "valid"], help="reference split")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=seed_type, default=0)
    parser.add_argument("--data-dir", default=None, type=existing_folder, help="corpora folder (default $GAN_WRITER_DATA)")
    parser.add_argument("--json", default=None,
                        help="a new file to write the JSON to, never overwritten (default: CKPT.metrics.json beside "
                             "the checkpoint, or CKPT.metrics.TIMESTAMP[-N].json when that exists)")
    parser.add_argument("--nll-texts", type=int, default=None, metavar="N",
                        help="NLL-test / NLL-gen over the first N texts of each split (default: the whole test split; "
                             "a 135 M model needs ~2 s per text on one core)")
    parser.add_argument("--form", default=None,
                        help="also score form_* metrics under this poem form (default: the form the run's metrics "
                             "callback checked, recorded in the checkpoint; 'none' skips them)")
    parser.add_argument("--nll-batch-size", type=int, default=256, metavar="B",
                        help="texts per forward pass of the NLL (default 256; lower it for a large vocabulary)")


def evaluate_checkpoint(
    ckpt: str, n: int = 2000, references: str = "test", temperature: float = 1.0, seed: int = 0,
    data_dir: str | None = None, nll_texts: int | None = None, nll_batch_size: int = 256, form: str | None = None,
) -> dict:
    """Metrics of the generator in ``ckpt`` on its own corpus.

    Returns a dict with ``metrics`` (BLEU-n, Self-BLEU-n, distinct-n, unique samples,
    ``nll_test`` and ``nll_gen`` in nats per token) and ``setup`` (sample size, reference
    size, tokenization, temperature, seed, corpus, checkpoint, ``nll_texts``: how many
    texts each NLL averaged) so results are comparable. ``nll_texts`` limits NLL-test to the
    first N texts of the test split (NLL-gen to the first N of the training split); None
    takes the whole test split (and as many training texts). ``nll_batch_size`` texts go
    through the model at once (the logits are ``(B, T, V)`` floats). ``form`` adds the
    ``form_*`` metrics of :func:`gan_writer.metrics.forms.form_metrics` (default: the form
    recorded in the checkpoint, if any; ``"none"``: skip them).

    Raises:
        ValueError: if the checkpoint names no corpus (its corpus must be re-readable) or is an
            oracle run,
            ``temperature`` is not a finite number > 0, or ``nll_texts`` / ``nll_batch_size``
            is < 1, or ``form`` is not a known form.
    """
    from gan_writer.data.corpora import load_corpus

    check_sample_count(n)
    check_option("--temperature", temperature, "> 0")
    for flag, value in (("--nll-texts", nll_texts), ("--nll-batch-size", nll_batch_size)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be at least 1, got {value}")
    if form is not None and form != "none":
        get_form(form)  # an unknown form fails before the checkpoint loads
    art = load_artifacts(ckpt)
    form = art.meta.get("form") if form is None else (None if form == "none" else form)
    corpus = art.meta.get("corpus")
    if not corpus:
        raise ValueError(f"{ckpt} records no corpus; evaluate needs the corpus it was trained on")
    if corpus == "oracle":  # gan_writer.data.oracle.OracleDataModule: synthetic ids, scored by the oracle
        raise ValueError(f"{ckpt} is a synthetic-data (oracle) run: evaluate reads a text corpus; score oracle runs "
                         "with gan-writer oracle-report (NLL-oracle) or gan-writer compare")
    data = art.meta.get("data") or {}
    read_args = {k: data[k] for k in ("seed", "valid_fraction", "test_fraction", "format", "text_field", "encoding") if k in data}
    splits = load_corpus(corpus, data_dir=data_dir or data.get("data_dir"), **read_args, **(data.get("corpus_options") or {}))
    refs = getattr(splits, references) or splits.valid
    tok = metric_tokenizer(art.meta.get("metric_tokenization"), bool(data.get("lowercase", False)))
    max_length = int(art.meta.get("max_length") or 64)
    start = time.perf_counter()
    texts, _ = sample_texts(art.generator, art.tokenizer, n, max_length, temperature=temperature, seed=seed)
    scores = text_metrics(texts, BleuReference(tok.tokenize_all(refs), max_n=max(BLEU_ORDERS)), tok)
    if form is not None:
        scores.update(form_metrics(texts, form))

    def nll(split_texts: list[str]) -> float:
        data = EncodedTexts(split_texts, art.tokenizer, max_length).ids
        return corpus_nll(art.generator, (pad_batch(data[i:i + nll_batch_size], art.tokenizer.pad_token_id)
                                          for i in range(0, len(data), nll_batch_size)))

    test = (splits.test or splits.valid)[:nll_texts]
    scores["nll_test"] = nll(test)
    scores["nll_gen"] = nll(splits.train[: len(test)])
    return {
        "metrics": scores,
        "setup": {
            "checkpoint": art.meta.get("path"), "corpus": corpus, "num_samples": n, "num_references": len(refs),
            "reference_split": references, "temperature": temperature, "form": form, "seed": seed, "nll_texts": len(test),
            **tok.describe(),
            "seconds": round(time.perf_counter() - start, 2),
        },
        "samples": texts[:10],
    }


MAX_SAMPLES = 100_000  #: ``--n`` bound: Self-BLEU's cost grows with its square


def check_sample_count(n: int) -> None:
    """Refuse ``--n`` below 2 or above :data:`MAX_SAMPLES`. Raises: ValueError naming ``--n``."""
    if n < 2:
        raise ValueError(f"--n must be at least 2 (Self-BLEU scores each sample against the others), got {n}")
    if n > MAX_SAMPLES:
        raise ValueError(f"--n must be at most {MAX_SAMPLES:,} (Self-BLEU scores every sample against all the "
                         f"others: the time grows with the square of --n), got {n:,}")


def check_json_path(value: str) -> Path:
    """The ``--json`` path, refused up front (before any work) when its folder does not exist or
    the file exists already (a user's file is never overwritten)."""
    out = Path(value)
    if out.is_dir():
        raise ValueError(f"--json {value} is a folder; give a file path such as {out / 'metrics.json'}")
    if out.exists():
        raise FileExistsError(f"--json {value} already exists; choose another path or remove it (it is never overwritten)")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"--json {value}: the folder {out.parent} does not exist; create it or choose another path")
    return out


def write_new(out: Path, text: str) -> None:
    """Write ``text`` to ``out``, which must not exist (exclusive creation: nothing is overwritten)."""
    try:
        with open(out, "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise FileExistsError(f"--json {out} was created by something else while evaluating; "
                              "it was left as it is: choose another path") from None


def write_beside(ckpt: Path, text: str) -> Path:
    """Write ``text`` to ``CKPT.metrics.json`` or, when that exists, a new
    ``CKPT.metrics.TIMESTAMP.json`` (``-2``, ``-3``, ... when taken); never overwrites a file."""
    first = ckpt.with_suffix(".metrics.json")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(10_000):
        out = first if i == 0 else first.with_name(f"{first.stem}.{stamp}{'' if i == 1 else f'-{i}'}.json")
        try:
            write_new(out, text)
            return out
        except FileExistsError:
            continue
    raise FileExistsError(f"{first.parent} holds too many {first.stem}.{stamp}-N.json files; pass --json PATH")


#: metrics that count samples (printed as whole numbers)
COUNT_METRICS = ("unique_samples", "empty_samples")


def metric_unit(key: str) -> str:
    """The unit of an evaluate metric, as printed in its table."""
    if key.startswith("nll_"):
        return "nats/token"
    if key in COUNT_METRICS:
        return "samples"
    if key == "form_syllable_err":
        return "syllables/line"
    return "share (0-1)"


def print_table(metrics: dict[str, float]) -> None:
    """The metric table: one ``key  value  unit`` row per metric, counts as whole numbers."""
    width = max(len(k) for k in metrics)
    print(f"{'metric':<{width}}  {'value':>9}  unit")
    for key, value in metrics.items():
        shown = f"{int(value):>9d}" if key in COUNT_METRICS else f"{value:>9.4f}"
        print(f"{key:<{width}}  {shown}  {metric_unit(key)}")


def run(args: argparse.Namespace) -> int:
    from gan_writer.commands.errors import check_writable, report

    try:
        check_sample_count(args.n)  # before any path is resolved
        if args.json:
            check_writable(check_json_path(args.json).parent, f"--json {args.json}")
        else:
            ckpt = resolve_checkpoint(args.ckpt)
            check_writable(ckpt.parent, f"the metrics file beside {ckpt} (pass --json PATH to write it elsewhere)")
        result = evaluate_checkpoint(args.ckpt, args.n, args.references, args.temperature, args.seed, args.data_dir,
                                     args.nll_texts, args.nll_batch_size, args.form)
    except (FileNotFoundError, FileExistsError, PermissionError, ValueError) as err:
        return report("gan-writer evaluate", err)
    print_table(result["metrics"])
    print("setup: " + ", ".join(f"{k}={v}" for k, v in result["setup"].items()))
    text = json.dumps(result, ensure_ascii=False, indent=2)
    try:
        if args.json:
            out = Path(args.json)
            write_new(out, text)
        else:
            out = write_beside(Path(result["setup"]["checkpoint"]), text)
    except OSError as err:
        return report("gan-writer evaluate", err)
    print(f"wrote {out}")
    return 0
