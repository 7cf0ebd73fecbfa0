"""Benchmark one adversarial generator step per reward kind, side by side in one run.

A generator step is what :class:`gan_writer.systems.seqgan.SeqGANModule` does per policy
update, without Lightning: :func:`gan_writer.adversarial.make_experience` (sample ``B``
sequences of ``T`` tokens, reward them, baseline) then
:func:`gan_writer.adversarial.policy_loss`, backward and an Adam step. Rows (interleaved
repeats, so machine load hits all alike; the median is reported):

* ``mc_rollout`` (SeqGAN), ``R`` completions per prefix, ``rollout_batching: per_prefix``;
* ``mc_rollout/all_prefixes`` (``--all-prefixes``; for GPUs: ``B·R·T²`` tokens in ``T`` calls);
* ``prefix``: a causal LSTM discriminator (embedding 64), discounted returns (gamma 0.23);
* ``sequence``: ``D(y)`` for every token, leave-one-out baseline.

The generator is the small GPT-2 of ``benchmarks/bench_rollout.py`` (2 layers, n_embd 128,
4 heads, vocabulary 5000, random weights) unless ``--checkpoint`` names a gan_writer
checkpoint, or ``--pretrained NAME --peft METHOD`` loads a pretrained model with a fresh
adapter: the SmolLM2 + LoRA row is ``--pretrained smollm2-135m-instruct --peft lora
--batch-size 8`` (rank 8, peft's default target modules; a fresh adapter costs what a trained
one does). Discriminators are fresh: speed does not depend on their weights.

Target (issue 11): ``prefix`` >= 20x cheaper than ``mc_rollout`` with ``R = 16``.

Run: ``OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_rewards.py [--repeats 3]``
(exit status 1 if the target is missed). ``mc_rollout`` runs ``--mc-repeats`` times
(default 1: one step takes about 40 s on one CPU thread).
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

from gan_writer.adversarial import EMABaseline, EstimatorConfig, make_experience, make_rollout_policy, policy_loss  # noqa: E402
from gan_writer.models import Generator  # noqa: E402
from gan_writer.models.discriminator import CNNDiscriminator  # noqa: E402
from gan_writer.models.prefix_discriminator import PrefixDiscriminator  # noqa: E402

BOS, EOS, PAD = 1, 2, 0


def build_generator(args) -> Generator:
    if args.checkpoint:
        from gan_writer.checkpoint import load_artifacts

        return load_artifacts(args.checkpoint).generator.to(args.device)
    if args.pretrained:
        from gan_writer.models.adapters import PeftOptions, apply_adapter
        from gan_writer.models.pretrained_base import base_identity

        torch.manual_seed(0)
        gen = Generator.from_pretrained(args.pretrained)
        if args.peft:
            gen = apply_adapter(gen, PeftOptions(method=args.peft), base_identity(args.pretrained))
        return gen.to(args.device)
    torch.manual_seed(0)
    return Generator.from_config(args.vocab, BOS, EOS, PAD, n_layer=2, n_embd=128, n_head=4,
                                 n_positions=args.length + 8, dropout=0.0).to(args.device)


def describe(args) -> str:
    if args.checkpoint:
        return f"checkpoint {args.checkpoint}"
    if args.pretrained:
        return f"{args.pretrained}" + (f" + fresh {args.peft} adapter" if args.peft else " (full)")
    return "small GPT-2"


def generator_step(gen, opt, disc, reference, config: EstimatorConfig, args, rng, ema) -> float:
    """Seconds for one make_experience + policy_loss + backward + Adam step."""
    start = time.perf_counter()
    exp = make_experience(gen, disc, config, batch_size=args.batch_size, max_length=args.length,
                          reference=reference, ema=ema, rng=rng)
    gen.eval()
    loss, _ = policy_loss(exp, gen.log_probs(exp.ids, exp.mask, temperature=config.temperature), config)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if args.device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--length", type=int, default=32)
    p.add_argument("--rollout-num", type=int, default=16)
    p.add_argument("--vocab", type=int, default=5000)
    p.add_argument("--repeats", type=int, default=3, help="repeats of the cheap rows")
    p.add_argument("--mc-repeats", type=int, default=1, help="repeats of the mc_rollout rows")
    p.add_argument("--all-prefixes", action="store_true", help="also time rollout_batching: all_prefixes")
    p.add_argument("--max-rollout-batch", type=int, default=4096, help="row cap of the all_prefixes decode (memory)")
    p.add_argument("--checkpoint", default=None, help="a gan_writer checkpoint as generator")
    p.add_argument("--pretrained", default=None, help="a pretrained generator, e.g. smollm2-135m-instruct")
    p.add_argument("--peft", default=None, choices=["lora", "ia3", "prefix"], help="with --pretrained: a fresh adapter")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    gen = build_generator(args)
    if getattr(gen, "adapter", None) is not None:
        from gan_writer.models.adapters import reference_policy

        reference = reference_policy(gen)  # a frozen adapter copy on the shared base (no second model)
    else:
        reference = make_rollout_policy(gen)
    V, T = gen.vocab_size, args.length
    cnn = CNNDiscriminator(V, T, embed_dim=64, filter_sizes=(2, 3, 4), num_filters=(64, 64, 64)).to(args.device)
    prefix = PrefixDiscriminator(V, T, PAD, backbone="lstm", embed_dim=64).to(args.device)
    rows = {
        "mc_rollout": (cnn, EstimatorConfig(reward="mc_rollout", rollout_num=args.rollout_num), args.mc_repeats),
        "prefix": (prefix, EstimatorConfig(reward="prefix", gamma=0.23, advantage="ema"), args.repeats),
        "sequence": (cnn, EstimatorConfig(reward="sequence", advantage="leave_one_out"), args.repeats),
    }
    if args.all_prefixes:
        rows["mc_rollout/all_prefixes"] = (
            cnn, EstimatorConfig(reward="mc_rollout", rollout_num=args.rollout_num, rollout_batching="all_prefixes",
                            max_rollout_batch=args.max_rollout_batch),
            args.mc_repeats)
    opt = torch.optim.Adam([q for q in gen.parameters() if q.requires_grad], lr=1e-5)
    rng, ema = torch.Generator(device=args.device).manual_seed(0), EMABaseline(0.9)
    for disc, config, _ in rows.values():  # warm-up (allocations, lazy init)
        generator_step(gen, opt, disc, reference, EstimatorConfig(**{**config.__dict__, "rollout_num": 1}), args, rng, ema)
    times: dict[str, list[float]] = {k: [] for k in rows}
    for i in range(max(args.repeats, args.mc_repeats)):
        for name, (disc, config, n) in rows.items():
            if i < n:
                times[name].append(generator_step(gen, opt, disc, reference, config, args, rng, ema))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"generator step, B={args.batch_size}, T={T}, R={args.rollout_num}, V={V}, threads={args.threads}, "
          f"device={args.device}, generator={describe(args)}")
    print(f"{'reward':<26}{'s/step':>10}{'x cheaper than mc_rollout':>28}   repeats")
    for name, s in med.items():
        print(f"{name:<26}{s:>10.3f}{med['mc_rollout'] / s:>28.1f}   {len(times[name])}")
    ratio = med["mc_rollout"] / med["prefix"]
    ok = ratio >= 20
    print(f"target prefix >= 20x cheaper than mc_rollout (R={args.rollout_num}): {ratio:.1f}x -> {'met' if ok else 'MISSED'}")
    if not (args.checkpoint or args.pretrained):
        print("SmolLM2 + LoRA: --pretrained smollm2-135m-instruct --peft lora --batch-size 8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
