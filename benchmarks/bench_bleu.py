"""Benchmark BLEU-4 and Self-BLEU-4: gan_writer vs nltk (Texygen's code path) vs fast-bleu (C++).

Setting (Texygen COCO protocol): 2,000 hypotheses (first lines of train_coco.txt) each
scored against all 10,000 references of test_coco.txt, and Self-BLEU-4 over the same
2,000 samples (leave-one-out). nltk is timed on a small subset and extrapolated per
hypothesis (the full run takes many minutes). Values are compared per hypothesis on that
subset (max absolute difference), and gan_writer vs fast-bleu on all hypotheses.

    python benchmarks/bench_bleu.py [--hyps 2000] [--nltk-hyps 10] [--repeats 3]

Timings include building the reference statistics ("cold"); "warm" rows reuse a
prebuilt reference (what a per-epoch callback does). Best of ``--repeats`` runs.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu  # noqa: E402

from gan_writer.metrics import (  # noqa: E402
    BleuReference,
    MetricTokenizer,
    self_bleu_scores,
    sentence_bleu_scores,
)

try:
    import fast_bleu
except ImportError:  # pip install -e .[bench]
    fast_bleu = None

W4 = (0.25, 0.25, 0.25, 0.25)
DEFAULT_DATA = Path(os.environ.get("GAN_WRITER_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def best_time(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def nltk_subset(refs_of, hyps, k):
    sm = SmoothingFunction().method1
    t0 = time.perf_counter()
    vals = [sentence_bleu(refs_of(i), hyps[i], W4, smoothing_function=sm) for i in range(k)]
    return (time.perf_counter() - t0) / k, np.array(vals)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--hyps", type=int, default=2000)
    ap.add_argument("--nltk-hyps", type=int, default=10, help="hypotheses nltk is timed on")
    ap.add_argument("--nltk-self-hyps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    tok = MetricTokenizer("word")
    coco = args.data / "benchmarks" / "coco"
    refs = tok.tokenize_all((coco / "test_coco.txt").read_text(encoding="utf-8").splitlines())
    hyps = tok.tokenize_all((coco / "train_coco.txt").read_text(encoding="utf-8").splitlines()[: args.hyps])
    H, R, k, ks = len(hyps), len(refs), args.nltk_hyps, args.nltk_self_hyps
    print(f"COCO, tokenization {tok.describe()}: {H} hypotheses, {R} references, "
          f"{sum(map(len, refs)) / R:.1f} tokens/reference; nltk timed on {k} (BLEU) / {ks} (Self-BLEU)")

    rows = []  # (task, impl, seconds, max|diff vs nltk| on subset)

    # ---------------------------------------------------------------- BLEU-4
    nltk_per, nltk_vals = nltk_subset(lambda i: refs, hyps, k)
    rows.append(("BLEU-4", f"nltk (extrapolated from {k})", nltk_per * H, 0.0))
    t_cold, ours = best_time(lambda: sentence_bleu_scores(hyps, BleuReference(refs, 4), 4), args.repeats)
    ref = BleuReference(refs, max_n=5)
    t_warm, _ = best_time(lambda: sentence_bleu_scores(hyps, ref, 4), args.repeats)
    t_all, _ = best_time(lambda: sentence_bleu_scores(hyps, BleuReference(refs, 5), (2, 3, 4, 5)), args.repeats)
    d_ours = float(np.abs(ours[:k] - nltk_vals).max())
    rows += [("BLEU-4", "gan_writer (cold: build + score)", t_cold, d_ours),
             ("BLEU-4", "gan_writer (warm: prebuilt reference)", t_warm, d_ours),
             ("BLEU-2..5", "gan_writer (cold, all 4 orders at once)", t_all, None)]
    fb_vs_ours = {}
    if fast_bleu is not None:
        def fb_cold():
            return np.array(fast_bleu.BLEU(refs, {4: W4}).get_score(hyps)[4])
        t_fb, fb = best_time(fb_cold, args.repeats)
        fbo = fast_bleu.BLEU(refs, {4: W4})
        t_fbw, _ = best_time(lambda: fbo.get_score(hyps), args.repeats)
        d_fb = float(np.abs(fb[:k] - nltk_vals).max())
        rows += [("BLEU-4", "fast-bleu (cold: build + score)", t_fb, d_fb),
                 ("BLEU-4", "fast-bleu (warm: prebuilt object)", t_fbw, d_fb)]
        fb_vs_ours["BLEU-4"] = float(np.abs(fb - ours).max())

    # ---------------------------------------------------------------- Self-BLEU-4
    nltk_self_per, nltk_self_vals = nltk_subset(lambda i: hyps[:i] + hyps[i + 1:], hyps, ks)
    rows.append(("Self-BLEU-4", f"nltk leave-one-out (extrap. from {ks})", nltk_self_per * H, 0.0))
    t_self, ours_self = best_time(lambda: self_bleu_scores(hyps, 4), args.repeats)
    rows.append(("Self-BLEU-4", "gan_writer", t_self, float(np.abs(ours_self[:ks] - nltk_self_vals).max())))
    if fast_bleu is not None:
        t_fbs, fbs = best_time(lambda: np.array(fast_bleu.SelfBLEU(hyps, {4: W4}).get_score()[4]), args.repeats)
        rows.append(("Self-BLEU-4", "fast-bleu SelfBLEU", t_fbs, float(np.abs(fbs[:ks] - nltk_self_vals).max())))
        fb_vs_ours["Self-BLEU-4"] = float(np.abs(fbs - ours_self).max())

    # ---------------------------------------------------------------- table
    base = {"BLEU-4": nltk_per * H, "BLEU-2..5": nltk_per * H, "Self-BLEU-4": nltk_self_per * H}
    mode = lambda impl: "warm" if "warm" in impl else "cold"  # noqa: E731
    fast = {(t, mode(i)): s for t, i, s, _ in rows if i.startswith("fast-bleu")}
    print(f"\n{'task':<12} {'implementation':<42} {'time (s)':>10} {'ms/hyp':>9} "
          f"{'x nltk':>9} {'x fast-bleu':>11} {'max|diff| vs nltk':>18}")
    for task, impl, sec, diff in rows:
        fb = fast.get(("BLEU-4" if task == "BLEU-2..5" else task, mode(impl)))
        vs_fb = "-" if fb is None or impl.startswith(("fast-bleu", "nltk")) else f"{fb / sec:.2f}"
        print(f"{task:<12} {impl:<42} {sec:>10.4f} {1000 * sec / H:>9.4f} {base[task] / sec:>9.0f} "
              f"{vs_fb:>11} {('-' if diff is None else f'{diff:.3g}'):>18}")
    print("\n'x nltk' = nltk time / this time; 'x fast-bleu' = fast-bleu time in the same mode (cold "
          "or warm) / this time, > 1 means faster than fast-bleu. The BLEU-2..5 row computes four "
          "orders and is compared with the BLEU-4 timings of nltk and fast-bleu.")
    for task, d in fb_vs_ours.items():
        print(f"{task}: max |gan_writer - fast-bleu| over all {H} hypotheses = {d:.3g}")
    print(f"mean BLEU-4 = {ours.mean():.6f}, mean Self-BLEU-4 = {ours_self.mean():.6f}")


if __name__ == "__main__":
    main()
