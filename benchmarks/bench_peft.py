"""Full fine-tuning vs LoRA vs IA3 vs prefix tuning on SmolLM2-135M, side by side in one run.

Per method: seconds per AdamW step at batch ``--batch`` x ``--length`` tokens (english_poems
training text, the model's own tokenizer), the peak RSS during its steps above the RSS before
them (optimizer state + gradients + activations, MiB, sampled every 5 ms; the base is loaded once
and shared; run with ``MALLOC_MMAP_THRESHOLD_=65536`` so freed blocks go back to the OS and one
method's memory is not reused by the next; full fine-tuning runs last), trainable parameters; then, with ``--nll-steps K``, the test-split NLL (nats per token) of the
zero-shot base and of each adapter after 1 + K steps on the same batches. Ratios are to full
fine-tuning. Run by hand (1 thread):

    MALLOC_MMAP_THRESHOLD_=65536 OMP_NUM_THREADS=1 python benchmarks/bench_peft.py --steps 3 --nll-steps 20
"""
from __future__ import annotations

import argparse
import copy
import gc
import os
import threading
import time

import psutil
import torch

from gan_writer.data import load_corpus
from gan_writer.data.datamodule import EncodedTexts, pad_batch
from gan_writer.metrics.nll import token_nll
from gan_writer.models import GeneratorConfig, build_generator
from gan_writer.models import adapters
from gan_writer.models.adapters import PeftOptions
from gan_writer.tokenization import pretrained_tokenizer

NAME = "smollm2-135m-instruct"
METHODS = {"lora": PeftOptions(method="lora", r=8, alpha=16), "ia3": PeftOptions(method="ia3"),
           "prefix": PeftOptions(method="prefix", num_virtual_tokens=16), "full": None}
LR = {"full": 5e-5, "lora": 5e-4, "ia3": 3e-3, "prefix": 3e-3}


def batches(tok, texts, batch, length):
    data = EncodedTexts(texts, tok, length)
    return [pad_batch([data[i] for i in range(s, min(s + batch, len(data)))], tok.pad_token_id)
            for s in range(0, len(data), batch)]


class PeakRSS:
    """Largest RSS (bytes) seen by a sampling thread while the context runs."""

    def __init__(self, proc):
        self.proc, self.peak, self._stop = proc, 0, threading.Event()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def step(gen, opt, b):
    total, n = token_nll(gen.log_probs(b["ids"], b["attention_mask"]), b["attention_mask"])
    opt.zero_grad()
    (total / n).backward()
    opt.step()
    return float(total.detach() / n)


@torch.no_grad()
def test_nll(gen, test):
    gen.eval()
    s = c = 0.0
    for b in test:
        total, n = token_nll(gen.log_probs(b["ids"], b["attention_mask"]), b["attention_mask"])
        s, c = s + float(total), c + float(n)
    gen.train()
    return s / c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per method (after 1 warm-up)")
    ap.add_argument("--nll-steps", type=int, default=0,
                    help="test NLL after 1 + N training steps (the warm-up step counts too; 0 = skip)")
    ap.add_argument("--test-samples", type=int, default=32)
    ap.add_argument("--samples", type=int, default=0, help="texts sampled from each model after training")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    tok = pretrained_tokenizer(NAME)
    corpus = load_corpus("english_poems")
    n_train = args.batch * (1 + max(args.steps, args.nll_steps))
    train = batches(tok, corpus.train[:n_train], args.batch, args.length)
    test = batches(tok, corpus.test[: args.test_samples], args.batch, args.length)
    proc = psutil.Process()
    t0 = time.perf_counter()
    base = build_generator(GeneratorConfig(pretrained=NAME), tok)
    print(f"loaded {NAME} in {time.perf_counter() - t0:.1f} s; batch {args.batch} x {args.length} tokens, 1 thread")
    rows = {}
    if args.nll_steps:
        rows["zero-shot"] = {"nll": test_nll(base, test)}
    for name, opts in METHODS.items():
        torch.manual_seed(0)
        gen = copy.deepcopy(base)
        if opts is not None:
            adapters.apply_adapter(gen, opts, {"name": NAME, "path": "", "size": 0, "sha256": ""})
        params = [p for p in gen.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=LR[name], weight_decay=0.0)
        gc.collect()
        rss0 = proc.memory_info().rss
        with PeakRSS(proc) as peak:
            step(gen, opt, train[0])  # warm-up (allocates the optimizer state)
            t = time.perf_counter()
            for b in train[1: 1 + args.steps]:
                step(gen, opt, b)
            sec = (time.perf_counter() - t) / args.steps
        row = {"trainable": adapters.trainable_parameters(gen)[0], "s_per_step": sec,
               "rss_growth_mib": (peak.peak - rss0) / 2**20}
        if args.nll_steps and name != "full":
            for b in train[1 + args.steps: 1 + args.nll_steps]:
                step(gen, opt, b)
            row["nll"] = test_nll(gen, test)
            for i in range(args.samples):
                ids = gen.sample(1, 40, generator=torch.Generator().manual_seed(i), top_k=50)
                print(f"  [{name}] {tok.decode(ids[0], skip_special_tokens=True)!r}")
        rows[name] = row
        del gen, opt
        gc.collect()
    full = rows["full"]
    print(f"{'method':10} {'trainable':>12} {'s/step':>8} {'x full':>7} {'peak+ MiB':>9} {'x full':>7} {'test NLL':>9}")
    for name, r in rows.items():
        if "s_per_step" not in r:
            print(f"{name:10} {'':>12} {'':>8} {'':>7} {'':>9} {'':>7} {r['nll']:9.3f}")
            continue
        nll = f"{r['nll']:9.3f}" if "nll" in r else f"{'-':>9}"
        print(f"{name:10} {r['trainable']:12,} {r['s_per_step']:8.2f} {r['s_per_step'] / full['s_per_step']:7.2f} "
              f"{r['rss_growth_mib']:9.0f} {r['rss_growth_mib'] / max(full['rss_growth_mib'], 1):7.2f} {nll}")
    print(f"peak RSS of the run: {proc.memory_info().rss / 2**20:.0f} MiB (ru_maxrss "
          f"{__import__('resource').getrusage(__import__('resource').RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
