"""Benchmark the cost of one SeqGAN adversarial batch, unit by unit (issue 18).

SeqGAN oracle setting (``experiments/oracle/seqgan.yaml``): LSTM generator 32/32,
vocabulary 5,000, length 20, batch 64, 16 rollouts, the SeqGAN CNN discriminator,
``d_steps`` 5 × ``d_epochs`` 3 on 10,000 negatives against 10,000 real samples in batches
of 32 + 32. Real samples come from a random LSTM "oracle" (N(0, 1), seed fixed). Units:

* ``rollout``: Monte Carlo rollout rewards of one batch (sample with state + rewards);
* ``negatives``: drawing ``N`` negatives -- ``new`` in chunks of ``max_sample_batch``
  (1,000), ``old`` in one batch (the code before issue 18);
* ``d_epoch``: one discriminator epoch, ``N`` real + ``N`` generated -- ``new``
  (:func:`gan_writer.systems.disc_training.train_discriminator`, fused Adam), ``one-product``
  (the same with the highway's weight gradient in one product, as before 2026-12-07, not in
  chunks of 32 rows: ``CNNDiscriminator.wgrad_rows = 0``), ``old`` (the per-minibatch loop
  before issue 18: four host reads per minibatch, default Adam);
* ``mle_epoch``: one MLE epoch of ``N`` sequences -- ``gan_writer`` (the real
  :class:`~gan_writer.systems.mle.MLEModule` in a ``Trainer``, clip 5, fused AdamW; the
  epoch alone, without the Trainer's set-up), ``bare`` (the same step without Lightning),
  ``bare, old`` (before issue 18: default AdamW, ``log_softmax`` + ``gather``), ``plain``
  (a plain PyTorch embedding/LSTM/linear loop with ``nll_loss``, Adam, clip 5);
* ``cnn`` (not in the default list): forward + backward of the CNN discriminator, 20
  batches of 32: today's module (``impl="fast"``), ``impl="reference"``, and two candidates not kept (a
  channels_last conv2d variant; one zero-padded matmul for all filter widths);
* ``bound`` (not in the default list; no timing): the least time a discriminator epoch can take
  on this machine -- its multiply-adds (forward + backward) at this thread's best float32 matmul
  rate, with nothing else -- for each highway, as rows of ``d_epoch``: with ``--textgan``, the
  table's TextGAN ratio of a bound row is the most any implementation could reach here;
* ``adv_batch``: one full adversarial batch (G step, then ``d_steps`` × (negatives, real
  batch, ``d_epochs`` passes)) with the new code.

``--cnn-options`` (default ``reference,reference+single,fast+single``) adds ``d_epoch`` and
``adv_batch`` rows for the CNN's options (issue 18: ``impl="reference"``, the Conv1d code
before the default became ``fast``; ``highway="single"``; ``fast`` is the default row itself),
each with its own generator and discriminator built from the same seed. ``--clock cpu`` times with ``time.process_time`` (this process's CPU time, less
disturbed by other jobs on a loaded machine than the default wall clock). ``--variants``
runs only the named variants (e.g. one per process, so that the peak-RSS rise of one is not
hidden by memory another one freed).

Each unit prints seconds (median of ``--repeats``, variants interleaved) and the rise of
the process's peak RSS during it (``VmHWM``, reset per unit through
``/proc/self/clear_refs``). ``--scale`` multiplies ``N`` (10,000) and the rollout count for
shorter runs. The glibc malloc thresholds are raised first, as ``gan-writer fit`` does
(:mod:`gan_writer.allocator`; in this process that helps both sides alike),
unless ``--glibc-default``. With ``--textgan PATH`` (a TextGAN-PyTorch checkout; nothing is downloaded)
the same units run with its code (``benchmarks/textgan_units.py``) in the same process,
interleaved, and the table gives TextGAN / gan_writer ratios (> 1: gan_writer faster).

Run (reduced scale, one thread, niced):
``OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_adversarial.py --scale 0.05 --repeats 2 [--textgan PATH]``

Measured (busy shared 2-core machine, 1 thread, torch 2.13 CPU, TextGAN-PyTorch 7ff8909,
scale 0.05: N = 640, 8 rollouts; TextGAN time / gan_writer time): rollout rewards 61.8 /
14.8 s = 4.19x; 640 negatives 5.99 / 0.62 s = 9.6x; discriminator epoch 6.59 / 5.55 s =
1.19x (old loop 5.83 s); MLE epoch 1.63 / 1.37 s = 1.19x (plain PyTorch loop 1.26 s);
adversarial batch (5 x 3 D epochs) 226.3 / 122.7 s = 1.84x. ``--scale 1 --units
negatives``: 10,000 negatives in chunks 9.5 s, +209 MiB; in one batch (old) 30.6 s, +763 MiB.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's gan_writer first

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from gan_writer.adversarial.losses import policy_gradient_loss  # noqa: E402
from gan_writer.adversarial.rollout import mc_rollout_rewards, sample_with_state  # noqa: E402
from gan_writer.metrics.nll import token_nll  # noqa: E402
from gan_writer.models.discriminator import CNNDiscriminator  # noqa: E402
from gan_writer.models.lstm import LSTMGenerator  # noqa: E402
from gan_writer.systems.disc_training import (  # noqa: E402
    PaddedRows, discriminator_loss, discriminator_optimizer, draw_negatives, train_discriminator,
)

V, T, B, ROLLOUTS, D_BATCH, N_FULL = 5000, 20, 64, 16, 32, 10_000
#: ``--cnn-options``: the CNN discriminator's option sets (issue 18) run as extra rows of
#: ``d_epoch`` and ``adv_batch``; the ``gan_writer`` row is the default module (``impl="fast"``,
#: ``highway="seqgan"``).
CNN_OPTIONS = {"reference": {"impl": "reference"}, "fast": {"impl": "fast"},
               "reference+single": {"impl": "reference", "highway": "single"},
               "fast+single": {"impl": "fast", "highway": "single"}}


# ---- measurement ----------------------------------------------------------------------------
def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def reset_peak() -> bool:
    """Reset the peak RSS (VmHWM) to the current RSS; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


#: the clock of every timing (``--clock``): wall time, or this process's CPU time (all its
#: threads), which other jobs on a loaded machine disturb less.
CLOCK = time.perf_counter


def measure(fn) -> tuple[float, float, float]:
    """Run ``fn()``; return (seconds of :data:`CLOCK`, rise of peak RSS during it, peak RSS), both in MiB."""
    reset_peak()
    base = _status_kib("VmRSS")
    t0 = CLOCK()
    own = fn()  # a variant may return its own timing (seconds) of the unit proper
    seconds, peak = CLOCK() - t0, _status_kib("VmHWM")
    seconds = own if isinstance(own, float) else seconds
    return seconds, max(0, peak - base) / 1024, peak / 1024


# ---- gan_writer side --------------------------------------------------------------------------
def old_discriminator_epoch(disc, opt, real, fake, batch_size):
    """The loop of ``SeqGANModule.discriminator_steps`` before issue 18 (one pass)."""
    n = real["ids"].size(0)
    stats = []
    order = torch.randperm(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        loss, bce, acc_r, acc_f = discriminator_loss(
            disc, {k: v[idx] for k, v in real.items()}, {k: v[idx] for k, v in fake.items()})
        opt.zero_grad()
        loss.backward()
        opt.step()
        stats.append((float(loss.detach()), float(bce), float(acc_r), float(acc_f)))
    return stats


class Ours:
    """gan_writer's pieces at the SeqGAN oracle sizes; ``impl``/``highway``: the CNN's options."""

    def __init__(self, real_ids: torch.Tensor, seed: int = 0, impl: str = "fast", highway: str = "seqgan") -> None:
        torch.manual_seed(seed)
        self.gen = LSTMGenerator(V, 32, 32, bos_token_id=0, eos_token_id=None, pad_token_id=0)
        self.disc = CNNDiscriminator(V, T, impl=impl, highway=highway)
        self.disc_old = copy.deepcopy(self.disc)
        self.d_opt = discriminator_optimizer(self.disc, 1e-4)
        self.d_opt_old = torch.optim.Adam(self.disc_old.parameters(), lr=1e-4)
        self.g_opt = torch.optim.Adam(self.gen.parameters(), lr=0.01)
        self.real_rows = PaddedRows(real_ids.tolist(), 0)
        self.real_ids = real_ids

    def real(self, n: int) -> dict:
        return self.real_rows.select(torch.randint(len(self.real_rows), (n,)))

    def rollout_rewards(self, rollout_num: int) -> torch.Tensor:
        ids, state = sample_with_state(self.gen, B, T)
        mask = torch.ones_like(ids)
        return mc_rollout_rewards(self.gen, self.disc, ids, mask, rollout_num, state=state)

    def generator_step(self, rollout_num: int) -> None:
        ids, state = sample_with_state(self.gen, B, T)
        mask = torch.ones_like(ids)
        rewards = mc_rollout_rewards(self.gen, self.disc, ids, mask, rollout_num, state=state)
        log_probs = self.gen.log_probs(ids, mask)
        loss = policy_gradient_loss(log_probs, rewards, mask)
        self.g_opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.gen.parameters(), 5.0)
        self.g_opt.step()

    def d_epoch_new(self, real, fake) -> None:
        train_discriminator(self.disc, self.d_opt, real, fake, 1, D_BATCH)

    def d_epoch_old(self, real, fake) -> None:
        self.disc_old.train()
        old_discriminator_epoch(self.disc_old, self.d_opt_old, real, fake, D_BATCH)

    def adversarial_batch(self, rollout_num: int, d_steps: int, d_epochs: int, n: int) -> None:
        self.generator_step(rollout_num)
        for _ in range(d_steps):
            fake, real = draw_negatives(self.gen, n, T), self.real(n)
            train_discriminator(self.disc, self.d_opt, real, fake, d_epochs, D_BATCH)


def old_log_probs(gen, ids, mask):
    """``CausalGenerator.log_probs`` before issue 18 (log_softmax, then gather)."""
    lp = gen.logits(ids, mask).float().log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    return lp * mask.to(lp.dtype)


def cnn_features_channels_last(disc: CNNDiscriminator, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The CNN's features with its Conv1d weights run as 1 x k conv2d on a channels_last input
    (a candidate measured by the ``cnn`` unit and not kept: its logits differ by ~1e-5)."""
    ids, m = disc._prepare(ids, mask)
    emb = disc.embedding(ids) * m.unsqueeze(-1).to(disc.embedding.weight.dtype)
    x = F.pad(emb.transpose(1, 2), (0, disc.seq_len - ids.shape[1])).unsqueeze(2)
    x = x.contiguous(memory_format=torch.channels_last)
    pooled = torch.cat([F.relu(F.conv2d(x, c.weight.unsqueeze(2), c.bias)).amax(dim=(-2, -1)) for c in disc.convs], 1)
    return disc.highway(pooled)


def cnn_features_padded_bank(disc: CNNDiscriminator, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The CNN's features with every filter zero-padded to the widest (``K``) and all widths in
    one ``(B * L, K * E) @ (K * E, 1720)`` matmul over one unfold of the right-padded input,
    windows past a filter's last valid position masked before the max (a candidate measured by
    the ``cnn`` unit and not kept: 5.8x the multiply-adds at SeqGAN's widths and ``L = 20``)."""
    ids, m = disc._prepare(ids, mask)
    emb = disc.embedding(ids) * m.unsqueeze(-1).to(disc.embedding.weight.dtype)
    length, k_max, e = disc.seq_len, max(disc.filter_sizes), emb.shape[-1]
    x = F.pad(emb, (0, 0, 0, length - ids.shape[1] + k_max - 1))  # (B, L + K - 1, E)
    windows = x.unfold(1, k_max, 1).transpose(2, 3).reshape(-1, k_max * e)  # (B * L, K * E), tap-major
    weight = torch.cat([F.pad(c.weight, (0, k_max - c.kernel_size[0])).transpose(1, 2).reshape(c.out_channels, -1)
                        for c in disc.convs])  # (1720, K * E)
    bias = torch.cat([c.bias for c in disc.convs])
    y = torch.addmm(bias, windows, weight.t()).view(ids.shape[0], length, -1)
    valid = torch.cat([(torch.arange(length) <= length - c.kernel_size[0]).unsqueeze(1).expand(-1, c.out_channels)
                       for c in disc.convs], 1)  # (L, 1720): window t is inside the sequence for this filter
    pooled = F.relu(y.masked_fill(~valid, float("-inf")).amax(dim=1))
    return disc.highway(pooled)


def cnn_units(disc: CNNDiscriminator, steps: int = 20) -> list[tuple[str, callable]]:
    """Forward + backward of ``steps`` batches of 32: today's module (``impl="fast"``),
    ``impl="reference"``, and two candidates not kept (channels_last conv2d, one padded matmul
    for all widths); their logits are compared with the reference's."""
    ids = torch.randint(V, (32, T))
    mask = torch.ones_like(ids)
    disc.eval()
    ref = copy.deepcopy(disc)
    ref.impl = "reference"
    candidates = {"impl=fast (default)": disc.features,
                  "channels_last": lambda i, m: cnn_features_channels_last(disc, i, m),
                  "one padded matmul": lambda i, m: cnn_features_padded_bank(disc, i, m)}
    with torch.no_grad():
        for name, features in candidates.items():
            diff = (disc.output(features(ids, mask)).squeeze(-1) - ref(ids, mask)).abs().max()
            print(f"  cnn: {name} max |logit difference| vs impl=reference = {float(diff):.2e}")

    def run(features):
        def f():
            for _ in range(steps):
                disc.output(features(ids, mask)).sum().backward()
        return f
    return [("gan_writer", run(disc.features)), ("gan_writer impl=reference", run(ref.features)),
            ("conv2d channels_last (not kept)", run(candidates["channels_last"])),
            ("one padded matmul, all widths (not kept)", run(candidates["one padded matmul"]))]


def cnn_epoch_macs(disc: CNNDiscriminator, n: int) -> int:
    """Multiply-adds of one discriminator epoch on ``n`` real + ``n`` generated rows: forward
    and backward (the weight and the input gradient, each as many as the forward: 3x) of the
    convolutions (``num_filters * k * E`` per window, ``L - k + 1`` windows), the highway (one
    ``F x F`` matrix per ``Linear``: 2 for ``seqgan``, 1 for ``single``) and the output layer."""
    e, length = disc.embedding.embedding_dim, disc.seq_len
    conv = sum(c.out_channels * k * e * (length - k + 1) for c, k in zip(disc.convs, disc.filter_sizes))
    dense = sum(m.in_features * m.out_features for m in disc.highway.modules() if isinstance(m, nn.Linear))
    return 3 * 2 * n * (conv + dense + disc.output.in_features)


def sgemm_peak(repeats: int = 5) -> float:
    """This thread's best float32 matmul rate (multiply-adds per second of :data:`CLOCK`): the
    fastest of ``repeats`` runs of a 2048^3 product and of the highway's ``(64, 1720) @ (1720,
    1720)``. It falls when another job shares the core (e.g. its hyperthread sibling)."""
    best = 0.0
    for m, k, n in ((2048, 2048, 2048), (64, 1720, 1720)):
        a, b = torch.randn(m, k), torch.randn(k, n)
        a @ b
        for _ in range(repeats):
            t0 = CLOCK()
            a @ b
            best = max(best, m * k * n / max(CLOCK() - t0, 1e-9))
    return best


def bound_rows(n: int, peaks: list[float]) -> list[tuple[str, str, float, float, float]]:
    """``bound`` unit: the least time a discriminator epoch can take here, its multiply-adds at
    the best of ``peaks`` (:func:`sgemm_peak`, measured before and after the other units) with
    nothing else (no Adam, max, copies or Python), per highway; rows of the ``d_epoch`` unit, so
    that the table's TextGAN ratio is the most any implementation could reach."""
    peak = max(peaks)
    print(f"  bound      sgemm peak on this thread: {', '.join(f'{p / 1e9:.1f}' for p in peaks)} "
          f"G multiply-adds/s (before, after the units); bound at {peak / 1e9:.1f}")
    rows = []
    for highway in ("seqgan", "single"):
        macs = cnn_epoch_macs(CNNDiscriminator(V, T, highway=highway), n)
        rows.append(("d_epoch", f"bound: {highway} highway at the sgemm peak", macs / peak, 0.0, 0.0))
        print(f"  bound      {highway:6s} highway: {macs / 1e9:.1f} G multiply-adds per epoch -> {rows[-1][2]:.3f} s")
    return rows


def mle_bare(gen: LSTMGenerator, real_ids: torch.Tensor, old: bool = False) -> None:
    """One epoch of MLEModule's step without Lightning (shuffled batches of 64, clip 5);
    ``old``: the code before issue 18 (default AdamW, log_softmax + gather)."""
    opt = torch.optim.AdamW(gen.parameters(), lr=0.01, weight_decay=0.0, fused=None if old else True)
    log_probs = old_log_probs if old else type(gen).log_probs
    for idx in torch.randperm(real_ids.size(0)).split(B):
        ids = real_ids[idx]
        mask = torch.ones_like(ids)
        total, n = token_nll(log_probs(gen, ids, mask), mask)
        opt.zero_grad()
        (total / n).backward()
        torch.nn.utils.clip_grad_norm_(gen.parameters(), 5.0)
        opt.step()


class PlainLSTM(nn.Module):
    """The reference: embedding -> nn.LSTM -> linear, as a plain PyTorch script writes it."""

    def __init__(self) -> None:
        super().__init__()
        self.emb, self.lstm, self.out = nn.Embedding(V, 32), nn.LSTM(32, 32, batch_first=True), nn.Linear(32, V)

    def epoch(self, real_ids: torch.Tensor, opt) -> None:
        for idx in torch.randperm(real_ids.size(0)).split(B):
            target = real_ids[idx]
            inp = torch.cat([torch.zeros_like(target[:, :1]), target[:, :-1]], 1)
            logp = F.log_softmax(self.out(self.lstm(self.emb(inp))[0]), -1)
            loss = F.nll_loss(logp.view(-1, V), target.reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.parameters(), 5.0)
            opt.step()


def mle_lightning(n: int, root: str) -> callable:
    """A closure running one epoch of the real MLEModule in a Lightning Trainer; it returns
    the epoch's seconds (``on_train_epoch_start`` to ``_end``, without the Trainer's set-up)."""
    import lightning as L

    class EpochTimer(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            self.t0 = CLOCK()

        def on_train_epoch_end(self, trainer, pl_module):
            self.seconds = CLOCK() - self.t0

    from gan_writer.data.oracle import OracleDataModule
    from gan_writer.models import GeneratorConfig
    from gan_writer.systems.mle import MLEModule

    dm = OracleDataModule(oracle_params=None, oracle_seed=1, num_train=n, num_valid=B, seq_len=T, batch_size=B)
    module = MLEModule(GeneratorConfig(backend="lstm", emb_dim=32, hidden_dim=32), tokenizer=dm.tokenizer,
                       max_length=T, lr=0.01, weight_decay=0.0, num_text_samples=0)

    def run() -> float:
        timer = EpochTimer()
        trainer = L.Trainer(callbacks=[timer], max_epochs=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, gradient_clip_val=5.0,
                            num_sanity_val_steps=0, default_root_dir=root, accelerator="cpu", devices=1)
        trainer.fit(module, datamodule=dm)
        return timer.seconds
    return run


# ---- the table --------------------------------------------------------------------------------
def run_units(args) -> list[tuple[str, str, float, float]]:
    n = max(10 * B, int(round(N_FULL * args.scale)))
    rollout_num = max(1, int(round(ROLLOUTS * min(1.0, args.scale * 10))))
    print(f"N = {n} (scale {args.scale}), rollouts {rollout_num}, d_steps {args.d_steps} x d_epochs {args.d_epochs}, "
          f"threads {torch.get_num_threads()}, torch {torch.__version__}")
    torch.manual_seed(args.seed)
    oracle = LSTMGenerator(V, 32, 32, bos_token_id=0, eos_token_id=None, pad_token_id=0, init_std=1.0).eval()
    real_ids = oracle.sample(n, T)
    ours = Ours(real_ids, args.seed)
    cnn_options = [o for o in args.cnn_options.split(",") if o]
    unknown = set(cnn_options) - set(CNN_OPTIONS)
    if unknown:
        raise SystemExit(f"--cnn-options: unknown {sorted(unknown)}; choose from {list(CNN_OPTIONS)}")
    # the same seed: the same generator and (for the seqgan highway) the same discriminator weights as ``ours``
    variants_of = {o: Ours(real_ids, args.seed, **CNN_OPTIONS[o]) for o in cnn_options if o != "fast"}  # fast: ``ours``
    one_product = Ours(real_ids, args.seed)  # the default module, highway weight gradient in one product (before 12-07)
    one_product.disc.wgrad_rows = 0
    tg = None
    if args.textgan:
        from textgan_units import TextGAN

        tg = TextGAN(args.textgan, V, T, B, args.seed)
        print(tg.describe())
    units = [u for u in args.units.split(",") if u]
    fake = draw_negatives(ours.gen, n, T)
    real = ours.real(n)
    plain = PlainLSTM()
    plain_opt = torch.optim.Adam(plain.parameters(), lr=0.01)
    gen_bare = copy.deepcopy(ours.gen)
    tmp = tempfile.mkdtemp(prefix="bench_adv_")
    variants: dict[str, list[tuple[str, callable]]] = {
        "rollout": [("gan_writer", lambda: ours.rollout_rewards(rollout_num))],
        "negatives": [("gan_writer", lambda: draw_negatives(ours.gen, n, T, max_sample_batch=1000)),
                      ("gan_writer old (one batch)", lambda: draw_negatives(ours.gen, n, T, max_sample_batch=None))],
        "d_epoch": [("gan_writer", lambda: ours.d_epoch_new(real, fake)),
                    ("gan_writer one-product highway wgrad", lambda: one_product.d_epoch_new(real, fake)),
                    *[(f"gan_writer {o}", lambda v=v: v.d_epoch_new(real, fake)) for o, v in variants_of.items()],
                    ("gan_writer old (per-minibatch loop)", lambda: ours.d_epoch_old(real, fake))],
        "mle_epoch": [("gan_writer", mle_lightning(n, tmp)),
                      ("gan_writer bare (no Lightning)", lambda: mle_bare(gen_bare, real_ids)),
                      ("gan_writer bare, old (before issue 18)", lambda: mle_bare(gen_bare, real_ids, old=True)),
                      ("plain PyTorch LSTM loop", lambda: plain.epoch(real_ids, plain_opt))],
        "adv_batch": [("gan_writer", lambda: ours.adversarial_batch(rollout_num, args.d_steps, args.d_epochs, n)),
                      *[(f"gan_writer {o}", lambda v=v: v.adversarial_batch(rollout_num, args.d_steps, args.d_epochs, n))
                        for o, v in variants_of.items()]],
    }
    if "cnn" in units:
        variants["cnn"] = cnn_units(copy.deepcopy(ours.disc))
    if tg is not None:
        tg_real = real_ids.clone()
        tg_fake = tg.negatives(n)
        variants["rollout"].append(("TextGAN", lambda: tg.rollout_rewards(rollout_num)))
        variants["negatives"].append(("TextGAN", lambda: tg.negatives(n)))
        variants["d_epoch"].append(("TextGAN", lambda: tg.discriminator_epochs(tg_real, tg_fake, 1)))
        variants["mle_epoch"].append(("TextGAN", lambda: tg.mle_epoch(tg_real)))
        variants["adv_batch"].append(("TextGAN", lambda: tg.adversarial_batch(tg_real, rollout_num, args.d_steps,
                                                                            args.d_epochs, n)))
    if args.variants:  # e.g. one variant per process, for a peak-RSS rise that no other variant's freed memory hides
        keep = set(args.variants.split(","))
        variants = {u: [(name, fn) for name, fn in vs if name in keep] for u, vs in variants.items()}
    sgemm_peaks = [sgemm_peak()] if "bound" in units else []  # before the units; once more after them
    rows = []
    for unit in (u for u in units if u != "bound"):
        times = {name: [] for name, _ in variants[unit]}
        peaks = {name: [] for name, _ in variants[unit]}
        for _ in range(args.repeats):
            for name, fn in variants[unit]:
                s, rise, peak = measure(fn)
                times[name].append(s)
                peaks[name].append((rise, peak))
        for name in times:
            rows.append((unit, name, statistics.median(times[name]), *max(peaks[name])))
            print(f"  {unit:10s} {name:38s} {rows[-1][2]:9.3f} s   peak RSS +{rows[-1][3]:7.1f} MiB"
                  f" (process {rows[-1][4]:.0f} MiB)", flush=True)
    return bound_rows(n, sgemm_peaks + [sgemm_peak()]) + rows if sgemm_peaks else rows


def print_table(rows) -> None:
    """Markdown table: per unit and variant, seconds, peak RSS rise and peak (MiB), the
    variant's time over gan_writer's default row, and (with ``--textgan``) TextGAN's time over
    the variant's: the speed-up of that variant over TextGAN-PyTorch (> 1: faster)."""
    by_unit: dict[str, dict[str, tuple[float, float, float]]] = {}
    for unit, name, s, rise, peak in rows:
        by_unit.setdefault(unit, {})[name] = (s, rise, peak)
    clock = "CPU" if CLOCK is time.process_time else "wall"
    print(f"\n| unit | variant | seconds ({clock}) | peak RSS rise (MiB) | process peak RSS (MiB) "
          "| time / gan_writer's | TextGAN / this |")
    print("|---|---|---|---|---|---|---|")
    for unit, res in by_unit.items():
        ref = res.get("gan_writer", (None,))[0]
        tg = res.get("TextGAN", (None,))[0]
        for name, (s, rise, peak) in res.items():
            vs_tg = f"{tg / s:.2f}x" if tg is not None and name != "TextGAN" else "–"
            vs_ref = f"{s / ref:.2f}x" if ref is not None else "–"
            print(f"| {unit} | {name} | {s:.3f} | {rise:.0f} | {peak:.0f} | {vs_ref} | {vs_tg} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="multiplies N = 10,000 (and the rollouts below 0.1)")
    p.add_argument("--repeats", type=int, default=1, help="interleaved repeats per unit (median)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--d-steps", type=int, default=5)
    p.add_argument("--d-epochs", type=int, default=3)
    p.add_argument("--units", default="rollout,negatives,d_epoch,mle_epoch,adv_batch")
    p.add_argument("--textgan", default=None, help="path of a TextGAN-PyTorch checkout (optional)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cnn-options", default="reference,reference+single,fast+single",
                   help=f"CNN discriminator option sets as extra d_epoch/adv_batch rows, from {list(CNN_OPTIONS)}")
    p.add_argument("--variants", default=None,
                   help="comma-separated variant names to run (default: all), e.g. 'TextGAN' or 'gan_writer fast+single'")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall time (perf_counter) or this process's CPU time (process_time; steadier on a loaded machine)")
    p.add_argument("--glibc-default", action="store_true",
                   help="keep glibc's malloc thresholds (default: raise them as `gan-writer fit` does, for both sides)")
    args = p.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"clock: {args.clock} ({CLOCK.__name__})")
    torch.set_num_threads(args.threads)
    if not args.glibc_default:
        from gan_writer.allocator import keep_freed_memory

        print(f"allocator: glibc thresholds raised (gan_writer.allocator): {keep_freed_memory()}")
    if not reset_peak():
        print("note: cannot reset the peak RSS here (/proc/self/clear_refs); rises are upper bounds")
    print_table(run_units(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
