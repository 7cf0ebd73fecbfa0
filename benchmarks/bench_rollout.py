"""Benchmark SeqGAN Monte Carlo rollouts: naive re-encoding vs gan_writer vs plain sampling.

Measures, side by side in one run (interleaved repeats, so machine load hits all alike), for
batch ``B=64``, length ``T=32``, ``R=16`` rollouts and a small randomly initialised GPT-2
(2 layers, n_embd 128, 4 heads, vocabulary 5000):

(a) naive: the TextGAN-PyTorch loop (``utils/rollout.py``, ``ROLLOUT.get_reward``): for
    each of the ``R`` rollouts and each prefix length ``t = 1..T-1``, one call with batch
    ``B`` that re-encodes BOS + the prefix and then samples the ``T - t`` remaining tokens
    (their ``rollout_mc_search``), then scores with the discriminator; here the call is
    Hugging Face ``model.generate(do_sample=True, top_k=0)`` (prefix re-encoded, then KV
    cached), i.e. ``R * (T - 1)`` generate calls of ``B`` rows. Rewards use the correct
    ``(B, T, R)`` layout (TextGAN's ``view`` mixes samples; that bug is not reproduced).
(a') optional (``--batched-generate``): one ``generate`` per prefix with all ``B * R`` rows,
    still re-encoding the prefix: isolates the gain of reusing the cache from batching.
(b) gan_writer: :func:`gan_writer.adversarial.mc_rollout_rewards` with the state left by
    :func:`gan_writer.adversarial.sample_with_state` (prefixes sliced from the cache, all
    ``B * R`` completions of a prefix in one batch).
(c) plain batched sampling by the same model: ``generator.sample(B * R, T)``, the practical
    limit of tokens per second (no prefix handling, no discriminator).

Tokens per second: (a), (a') and (b) sample ``B * R * sum_{t=1}^{T-1} (T - t)`` tokens (the
rollout workload; 507,904 for the defaults); (c) samples ``B * R * T`` per call. Every
figure is the median over ``--repeats`` (default 3) for (b) and (c) and over
``--naive-repeats`` (default 1: (a) alone takes minutes) for (a) and (a'). (a), (a') and
(b) include the discriminator (a small text CNN by default; ``--disc seqgan`` for the full
SeqGAN CNN, about 1.3 s per 1024 sequences, which then dominates), whose share is printed.

Targets (issue 4): (b) >= 1.5x faster than (a) and >= 70% of (c)'s tokens per second.

Run: ``OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_rollout.py [--repeats 3] [--threads 1]``
(about 5 minutes with the defaults on one thread; exit status 1 if a target is missed).

Measured on a shared, busy 2-core CPU (load ~3.5), 1 thread, torch 2.13 CPU, transformers
5.24, defaults: (a) 130.3 s = 3.9k tokens/s, (b) 41.2 s = 12.3k tokens/s, (c) 12.5k
tokens/s: (b) is 3.2x faster than (a) and reaches 99% of (c); the discriminator is 6% of
(b). A one-repeat run with ``--batched-generate``: (a) 141.5 s, (a') 113.3 s, (b) 35.9 s,
(c) 14.3k tokens/s ((b) 3.9x faster than (a), 3.2x faster than (a'), 99% of (c)).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from gan_writer.adversarial import mc_rollout_rewards, sample_with_state  # noqa: E402
from gan_writer.models import Generator  # noqa: E402
from gan_writer.models.discriminator import CNNDiscriminator  # noqa: E402
from gan_writer.sampling import mask_after_eos  # noqa: E402

BOS, EOS, PAD = 1, 2, 0


@torch.no_grad()
def naive_rollout(gen: Generator, disc, ids: torch.Tensor, mask: torch.Tensor, R: int, per_prefix_batch: bool) -> torch.Tensor:
    """(a) / (a'): rewards (B, T) with the prefix re-encoded by ``generate`` for every call."""
    B, T = ids.shape
    lengths = mask.sum(1)
    rewards = torch.zeros(B, T)
    rewards[torch.arange(B), lengths - 1] = disc.prob_real(ids, mask)
    bos = torch.full((B, 1), BOS, dtype=torch.long)
    loops = [(R, 1)] if per_prefix_batch else [(1, r) for r in range(R)]
    sums = torch.zeros(B, T)
    for rep, _ in loops:
        for t in range(1, T):
            inp = torch.cat([bos, ids[:, :t]], 1).repeat_interleave(rep, 0)
            out = gen.model.generate(
                input_ids=inp, attention_mask=torch.ones_like(inp), max_new_tokens=T - t,
                do_sample=True, top_k=0, top_p=1.0, temperature=1.0,
                eos_token_id=EOS, pad_token_id=PAD,
            )
            comp = out[:, t + 1:]
            if comp.size(1) < T - t:  # every row ended early
                comp = torch.cat([comp, torch.full((comp.size(0), T - t - comp.size(1)), PAD)], 1)
            seq = torch.cat([ids[:, :t].repeat_interleave(rep, 0), comp], 1)
            p = disc.prob_real(seq, mask_after_eos(seq, EOS))
            sums[:, t - 1] += p.view(B, rep).sum(1)
    active = torch.arange(T) < (lengths - 1).unsqueeze(1)
    rewards[active] = (sums / R)[active]
    return rewards


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--length", type=int, default=32)
    ap.add_argument("--rollouts", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=5000)
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="repeats of (b) and (c)")
    ap.add_argument("--naive-repeats", type=int, default=1,
                    help="repeats of (a)/(a') (about 2-4 minutes each on one CPU thread)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--disc", choices=["small", "seqgan"], default="small")
    ap.add_argument("--batched-generate", action="store_true", help="also time (a'): one generate per prefix")
    ap.add_argument("--skip-naive", action="store_true", help="skip (a) (the slowest)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    B, T, R, V = args.batch, args.length, args.rollouts, args.vocab
    gen = Generator.from_config(
        V, BOS, EOS, PAD, n_layer=args.n_layer, n_embd=args.n_embd, n_head=4, n_positions=T + 8, dropout=0.0,
    ).eval()
    if args.disc == "small":
        disc = CNNDiscriminator(V, T, embed_dim=64, filter_sizes=(2, 3, 4, 5), num_filters=(64, 64, 64, 64))
    else:
        disc = CNNDiscriminator(V, T)
    disc.eval()
    rng = torch.Generator().manual_seed(0)

    rollout_tokens = B * R * sum(T - t for t in range(1, T))
    plain_tokens = B * R * T

    # the sequences the rollouts start from and the state sampling them left (not timed;
    # rollouts only slice the state, never modify it, so every repeat reuses it)
    ids0, state0 = sample_with_state(gen, B, T, generator=rng)
    mask0 = mask_after_eos(ids0, EOS)

    cases: dict[str, list[float]] = {"a": [], "a'": [], "b": [], "c": []}
    # warm-up (allocator, first-call overheads), small
    with torch.no_grad():
        gen.sample(8, 4)
        mc_rollout_rewards(gen, disc, ids0[:4, :6], mask0[:4, :6], 2)
        if not args.skip_naive:
            naive_rollout(gen, disc, ids0[:4, :6], mask0[:4, :6], 2, per_prefix_batch=False)

    print(f"# B={B} T={T} R={R} V={V} GPT-2 {args.n_layer}x{args.n_embd}, disc={args.disc}, "
          f"threads={torch.get_num_threads()}, torch {torch.__version__}", flush=True)
    for rep in range(args.repeats):
        if not args.skip_naive and rep < args.naive_repeats:
            cases["a"].append(timed(lambda: naive_rollout(gen, disc, ids0, mask0, R, per_prefix_batch=False)))
        if args.batched_generate and rep < args.naive_repeats:
            cases["a'"].append(timed(lambda: naive_rollout(gen, disc, ids0, mask0, R, per_prefix_batch=True)))
        cases["b"].append(timed(lambda: mc_rollout_rewards(gen, disc, ids0, mask0, R, state=state0, generator=rng)))
        cases["c"].append(timed(lambda: gen.sample(B * R, T, generator=rng)))
        print(f"  repeat {rep + 1}: " + ", ".join(f"{k}={v[-1]:.2f}s" for k, v in cases.items() if len(v) == rep + 1),
              flush=True)

    # discriminator share of (b): T-1 calls of B*R rows plus one of B rows
    with torch.no_grad():
        seq = gen.sample(B * R, T, generator=rng)
        sm = mask_after_eos(seq, EOS)
        d_time = statistics.median(timed(lambda: [disc.prob_real(seq, sm) for _ in range(T - 1)]) for _ in range(2))

    med = {k: statistics.median(v) for k, v in cases.items() if v}
    tps = {k: (plain_tokens if k == "c" else rollout_tokens) / v for k, v in med.items()}
    names = {
        "a": "(a) naive: TextGAN loop, generate() per (rollout, prefix), batch B",
        "a'": "(a') generate() per prefix, batch B*R (re-encodes)",
        "b": "(b) gan_writer mc_rollout_rewards (cache reuse)",
        "c": "(c) plain batched sampling, batch B*R",
    }
    print()
    print(f"| {'method':<66} | {'median s':>9} | {'tokens':>8} | {'tokens/s':>9} | {'b vs this':>9} |")
    print(f"|{'-' * 68}|{'-' * 11}|{'-' * 10}|{'-' * 11}|{'-' * 11}|")
    for k, v in med.items():
        ratio = tps["b"] / tps[k]
        toks = plain_tokens if k == "c" else rollout_tokens
        print(f"| {names[k]:<66} | {v:>9.2f} | {toks:>8} | {tps[k]:>9.0f} | {ratio:>8.2f}x |")
    print()
    ok = True
    if "a" in med:
        speed = med["a"] / med["b"]
        ok &= speed >= 1.5
        print(f"speed-up of (b) over (a): {speed:.2f}x (target >= 1.5x) {'OK' if speed >= 1.5 else 'MISSED'}")
    if "a'" in med:
        speed_batched = med["a'"] / med["b"]
        print(f"speed-up of (b) over (a'): {speed_batched:.2f}x")
    eff = tps["b"] / tps["c"]
    ok &= eff >= 0.7
    print(f"(b) tokens/s as a share of (c): {eff:.0%} (target >= 70%) {'OK' if eff >= 0.7 else 'MISSED'}")
    print(f"discriminator time inside (b): {d_time:.2f}s ({d_time / med['b']:.0%} of (b))")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
