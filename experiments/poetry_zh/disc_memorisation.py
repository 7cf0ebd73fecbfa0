"""Does a discriminator generalise, or memorise the training set? (run by hand, ~8 min on CPU)

Trains each discriminator kind on the training quatrains of ``shi`` against samples of the
MLE generator (as the pretraining stage does: batches of 64 + 64, Adam) and reports, every
quarter of the run, three ROC AUCs over the discriminator's logits:

* held-out real vs held-out generated: how well it tells real from generated on data it
  never saw (0.5 = chance) — the signal a SeqGAN reward should carry;
* training real vs held-out real: how well it tells *training* poems from unseen ones, i.e.
  memorisation (0.5 = none);
* held-out generated vs training generated: the same for its negatives.

    python experiments/poetry_zh/disc_memorisation.py [--mle checkpoints/poetry_zh/mle] [--steps 1200]
    python experiments/poetry_zh/disc_memorisation.py --corpus sonnets --max-length 160 \
        --mle checkpoints/poetry_en/mle --num-fakes 6000 --steps 600     # ~21 min

Needs the MLE run of experiments/poetry_zh/mle.yaml (or of the corpus given). The `shi` numbers
quoted in the README and in experiments/poetry_zh/disc.yaml come from this script with its
defaults; the sonnets numbers from the second command.
"""
from __future__ import annotations

import argparse
import time

import torch

from gan_writer.checkpoint import load_artifacts
from gan_writer.data.corpora import load_corpus
from gan_writer.data.datamodule import pad_batch
from gan_writer.sampling import mask_after_eos
from gan_writer.systems.discriminator import DiscriminatorConfig, discriminator_loss

KINDS = {  # name -> (DiscriminatorConfig fields, Adam learning rate)
    "cnn (SeqGAN)": ({"kind": "cnn", "impl": "reference"}, 1e-3),  # reference: as measured in docs/discriminators.md
    "transformer": ({"kind": "transformer", "n_layer": 2, "n_embd": 64, "n_head": 2}, 5e-4),
}


def auc(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """ROC AUC of scores ``pos`` (N,) above ``neg`` (M,) (ties count one half)."""
    greater = (pos[:, None] > neg[None, :]).double().mean()
    return float(greater + 0.5 * (pos[:, None] == neg[None, :]).double().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mle", default="checkpoints/poetry_zh/mle")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--corpus", default="shi")
    parser.add_argument("--max-length", type=int, default=26)
    parser.add_argument("--num-fakes", type=int, default=26000, help="generator samples (held-out set + training pool)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    art = load_artifacts(args.mle)
    tok, gen = art.tokenizer, art.generator.eval()
    corpus = load_corpus(args.corpus)

    def encode(texts):
        rows = tok(texts, add_special_tokens=False)["input_ids"]
        return [(list(r) + [tok.eos_token_id])[: args.max_length] for r in rows]

    train, held = encode(corpus.train), encode((corpus.valid + corpus.test)[:2000])
    if len(held) < 100:
        print(f"warning: only {len(held)} held-out samples in {args.corpus!r}: the AUCs below are very noisy")
    if args.num_fakes < len(held) + 64:
        parser.error(f"--num-fakes must be at least {len(held) + 64}: {len(held)} are held out to match the "
                     "held-out real samples, and the rest (at least one batch) train the discriminator")
    torch.manual_seed(args.seed)
    with torch.no_grad():
        fakes = torch.cat([gen.sample(min(1000, args.num_fakes - i), args.max_length)
                           for i in range(0, args.num_fakes, 1000)])
    n_eval = len(held)
    as_fake = lambda ids: {"ids": ids, "attention_mask": mask_after_eos(ids, gen.eos_token_id)}  # noqa: E731
    as_real = lambda rows: pad_batch(rows, tok.pad_token_id)  # noqa: E731
    held_fake, train_fakes = as_fake(fakes[:n_eval]), fakes[n_eval:]
    train_eval, held_real, train_fake_eval = as_real(train[:n_eval]), as_real(held), as_fake(train_fakes[:n_eval])
    print(f"{args.corpus}: {len(train)} training and {n_eval} held-out samples; {len(fakes)} generator samples")
    print("| discriminator | step | held-out real vs generated | training vs unseen real | training vs unseen generated | seconds |")
    print("|---|---|---|---|---|---|")
    for name, (fields, lr) in KINDS.items():
        torch.manual_seed(args.seed)
        disc = DiscriminatorConfig(**fields).build(len(tok), args.max_length, tok.pad_token_id)
        opt = torch.optim.Adam(disc.parameters(), lr=lr)
        rng, start = torch.Generator().manual_seed(args.seed + 1), time.time()
        for step in range(1, args.steps + 1):
            real = as_real([train[i] for i in torch.randint(len(train), (64,), generator=rng).tolist()])
            fake = as_fake(train_fakes[torch.randint(len(train_fakes), (64,), generator=rng)])
            loss = discriminator_loss(disc, real, fake)[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % max(1, args.steps // 4) == 0:
                disc.eval()
                with torch.no_grad():
                    s = {k: disc(b["ids"], b["attention_mask"]) for k, b in (
                        ("train", train_eval), ("real", held_real), ("fake", held_fake), ("train_fake", train_fake_eval))}
                disc.train()
                print(f"| {name} | {step} | {auc(s['real'], s['fake']):.3f} | {auc(s['train'], s['real']):.3f} | "
                      f"{auc(s['fake'], s['train_fake']):.3f} | {time.time() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
