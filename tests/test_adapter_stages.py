"""Adapter runs through the real CLI on a tiny local GPT-2 (2 layers, hidden 32, its own BPE
tokenizer saved beside it) with the shipped SmolLM2 YAMLs: MLE with LoRA → adapter-only
checkpoint → generate, export (merged and peft folder), resume, and SeqGAN from it."""
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config

from gan_writer.checkpoint import load_artifacts, resolve_checkpoint
from gan_writer.cli import main
from gan_writer.commands.export import export
from gan_writer.commands.generate import generate_texts
from gan_writer.data import load_corpus
from gan_writer.tokenization import bpe_tokenizer

REPO = Path(__file__).resolve().parents[1]
EN = REPO / "experiments" / "poetry_en"
TINY = ["--trainer.enable_progress_bar=false", "--trainer.log_every_n_steps=1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("adapter_runs")
    base = root / "base"
    texts = load_corpus("english_poems", data_dir=str(shared_data)).train[:300]
    tok = bpe_tokenizer(texts, vocab_size=400)
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_layer=2, n_embd=32, n_head=2, n_positions=80, bos_token_id=tok.bos_token_id,
                     eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(base)
    tok.save_pretrained(base)
    common = [*TINY, f"--trainer.logger.init_args.save_dir={root}", "--trainer.limit_val_batches=1",
              f"--data.init_args.tokenizer={base}", "--data.init_args.max_train_samples=64",
              "--data.init_args.max_length=24", "--data.init_args.corpus_options={unit: lines, lines_per_sample: 1}"]
    assert main(["fit", "--config", str(EN / "smollm2_lora_mle.yaml"), *common, "--trainer.max_steps=4",
          "--trainer.val_check_interval=4", f"--model.init_args.generator.pretrained={base}",
          "--model.init_args.lr=0.05", "--model.init_args.warmup_steps=0", "--model.init_args.num_text_samples=1"]) == 0
    return root, base, root / "poetry_en" / "smollm2_lora_mle", common


def test_lora_checkpoint_holds_only_the_adapter_and_generates(run):
    root, base, mle, _ = run
    ckpt = torch.load(resolve_checkpoint(mle), map_location="cpu", weights_only=False)
    keys = [k for k in ckpt["state_dict"] if k.startswith("generator.")]
    assert keys and all(".lora_A." in k or ".lora_B." in k for k in keys)
    spec = ckpt["gan_writer"]["generator_spec"]
    assert spec["peft"]["method"] == "lora" and spec["base"]["path"] == str(base.resolve())
    base_bytes = (base / "model.safetensors").stat().st_size
    assert resolve_checkpoint(mle).stat().st_size < 0.5 * base_bytes
    art = load_artifacts(mle)
    assert any(v.abs().sum() > 0 for k, v in ckpt["state_dict"].items() if ".lora_B." in k)  # it trained
    state = art.generator.state_dict()
    assert all(torch.equal(state[k[len("generator."):]], v) for k, v in ckpt["state_dict"].items() if k in keys)
    texts = generate_texts(str(mle), n=2, max_new_tokens=5, seed=0)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_export_merged_and_peft_folder_give_the_same_logits(run, tmp_path):
    from peft import PeftModel

    _, base, mle, _ = run
    art = load_artifacts(mle)
    ids = torch.tensor([[art.generator.bos_token_id, 5, 17, 42, 9]])
    with torch.no_grad():
        expected = art.generator.model(input_ids=ids).logits
    merged = export(str(mle), str(tmp_path / "merged"), merge=True)
    with torch.no_grad():
        got = AutoModelForCausalLM.from_pretrained(merged).eval()(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-5)
    folder = export(str(mle), str(tmp_path / "adapter"))
    assert (folder / "adapter_model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    with torch.no_grad():
        peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), folder).eval()
        assert torch.allclose(peft_model(input_ids=ids).logits, expected, atol=1e-5)
    with pytest.raises(FileExistsError, match="exists"):
        export(str(mle), str(folder))
    assert main(["export", "--ckpt", str(mle), "--out", str(folder)]) == 2


def test_resume_an_adapter_run_with_ckpt_path(run):
    root, base, mle, common = run
    last = resolve_checkpoint(mle).parent / "last.ckpt"
    assert main(["fit", "--config", str(EN / "smollm2_lora_mle.yaml"), *common, "--trainer.max_steps=6",
          "--trainer.val_check_interval=2", f"--model.init_args.generator.pretrained={base}",
          "--model.init_args.lr=0.05", "--model.init_args.warmup_steps=0", "--model.init_args.num_text_samples=0",
          f"--ckpt_path={last}"]) == 0
    resumed = sorted(mle.glob("version_*/checkpoints/last.ckpt"))[-1]
    assert torch.load(resumed, map_location="cpu", weights_only=False)["global_step"] == 6


def test_seqgan_from_the_lora_checkpoint_trains_only_the_adapter(run):
    root, base, mle, common = run
    assert main(["fit", "--config", str(EN / "smollm2_lora_seqgan.yaml"), *common, "--trainer.max_epochs=1",
          "--trainer.limit_train_batches=2", f"--model.init_args.init_checkpoint={mle}",
          f"--data.init_args.tokenizer={mle}", "--model.init_args.rollout_policy=delayed",
          "--model.init_args.g_batch_size=4", "--model.init_args.d_num_samples=8", "--model.init_args.d_batch_size=8",
          "--model.init_args.num_text_samples=1", "--model.init_args.discriminator.filter_sizes=[2]",
          "--model.init_args.discriminator.num_filters=[4]"]) == 0
    adv = root / "poetry_en" / "smollm2_lora_seqgan"
    ckpt = torch.load(resolve_checkpoint(adv), map_location="cpu", weights_only=False)
    gen_keys = [k for k in ckpt["state_dict"] if k.startswith(("generator.", "mle_reference.", "rollout."))]
    assert gen_keys and all(".lora_" in k for k in gen_keys)  # no base weights, no copy of the base
    before, after = load_artifacts(mle).generator.state_dict(), load_artifacts(adv).generator.state_dict()
    lora = [k for k in before if ".lora_" in k and ".default." in k]
    assert any(not torch.equal(before[k], after[k]) for k in lora)
    assert all(torch.equal(before[k], after[k]) for k in before if ".lora_" not in k)


@pytest.mark.parametrize("method", ["ia3", "prefix"])
def test_ia3_and_prefix_yamls_train_save_only_the_adapter_and_generate(run, method):
    root, base, _, common = run
    assert main(["fit", "--config", str(EN / f"smollm2_{method}_mle.yaml"), *common, "--trainer.max_steps=2",
          "--trainer.val_check_interval=2", f"--model.init_args.generator.pretrained={base}",
          "--model.init_args.warmup_steps=0", "--model.init_args.num_text_samples=1"]) == 0
    out = root / "poetry_en" / f"smollm2_{method}_mle"
    ckpt = torch.load(resolve_checkpoint(out), map_location="cpu", weights_only=False)
    keys = [k for k in ckpt["state_dict"] if k.startswith("generator.")]
    marker = ".ia3_l." if method == "ia3" else ".prompt_encoder."
    assert keys and all(marker in k for k in keys)
    texts = generate_texts(str(out), n=2, max_new_tokens=6, seed=0)
    assert len(texts) == 2
    art = load_artifacts(out)
    assert art.generator.max_positions == 80 - (16 if method == "prefix" else 0)


def test_discriminator_pretraining_from_the_lora_checkpoint(run):
    from gan_writer.systems.discriminator import load_discriminator

    root, base, mle, common = run
    assert main(["fit", "--config", str(REPO / "experiments/poetry_en/disc.yaml"), *common, "--trainer.max_epochs=1",
          "--trainer.limit_train_batches=2", f"--model.init_args.init_checkpoint={mle}",
          f"--data.init_args.tokenizer={mle}", "--data.init_args.corpus=english_poems",
          "--model.init_args.num_negatives=16", "--model.init_args.discriminator.n_embd=16",
          "--model.init_args.discriminator.n_layer=1", "--trainer.logger.init_args.name=poetry_en/smollm2_lora_disc"]) == 0
    disc_run = root / "poetry_en" / "smollm2_lora_disc"
    ckpt = torch.load(resolve_checkpoint(disc_run), map_location="cpu", weights_only=False)
    gen_keys = [k for k in ckpt["state_dict"] if k.startswith("generator.")]
    assert gen_keys and all(".lora_" in k for k in gen_keys)  # the frozen generator: its adapter only
    disc, _ = load_discriminator(str(disc_run))
    assert sum(p.numel() for p in disc.parameters()) > 0
    before, after = load_artifacts(mle).generator.state_dict(), load_artifacts(disc_run).generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_adalora_run_interrupted_and_resumed_equals_the_straight_run(run, tmp_path):
    """AdaLoRA's importance averages, rank pattern and step count are in the checkpoint: SIGTERM
    after step 3, ``--ckpt_path`` to step 6, gives the straight 6-step run's weights and ranks
    bit for bit (without the saved allocator state the resumed run prunes other ranks)."""
    from gan_writer.models.adalora_state import ADALORA_KEY
    from tiny_runs import callback

    root, base, _, common = run
    ada = ["--model.init_args.generator.peft.method=adalora", "--model.init_args.generator.peft.r=2",
           "--model.init_args.generator.peft.init_r=4", "--model.init_args.generator.peft.tinit=1",
           "--model.init_args.generator.peft.tfinal=2", "--model.init_args.generator.peft.deltaT=1",
           "--model.init_args.generator.peft.total_step=10"]  # still allocating at step 6: averages live

    def fit(save_dir, *extra):
        return main(["fit", "--config", str(EN / "smollm2_lora_mle.yaml"), *common, *ada, "--trainer.max_steps=6",
                     "--trainer.val_check_interval=3", f"--trainer.logger.init_args.save_dir={save_dir}",
                     f"--model.init_args.generator.pretrained={base}", "--model.init_args.lr=0.05",
                     "--model.init_args.warmup_steps=0", "--model.init_args.num_text_samples=0", *extra])

    def last(save_dir, version):
        path = save_dir / "poetry_en" / "smollm2_lora_mle" / f"version_{version}" / "checkpoints" / "last.ckpt"
        return torch.load(path, map_location="cpu", weights_only=True)

    assert fit(tmp_path / "a") == 0
    assert fit(tmp_path / "b", callback("SignalAt", step=3, signum="SIGTERM")) == 143
    stopped = last(tmp_path / "b", 0)
    assert stopped["global_step"] == 3 and stopped[ADALORA_KEY]["steps"] > 0
    assert stopped[ADALORA_KEY]["exp_avg_ipt"]  # importance averages exist by then
    assert fit(tmp_path / "b", "--ckpt_path=" + str(tmp_path / "b/poetry_en/smollm2_lora_mle/version_0/checkpoints/last.ckpt")) == 0
    straight, resumed = last(tmp_path / "a", 0), last(tmp_path / "b", 1)
    assert resumed["global_step"] == straight["global_step"] == 6
    assert straight["state_dict"].keys() == resumed["state_dict"].keys()
    assert [k for k in straight["state_dict"] if not torch.equal(straight["state_dict"][k], resumed["state_dict"][k])] == []
    a, b = straight[ADALORA_KEY], resumed[ADALORA_KEY]
    assert a["steps"] == b["steps"] > stopped[ADALORA_KEY]["steps"]
    assert a["rank_pattern"] is not None and a["rank_pattern"].keys() == b["rank_pattern"].keys()
    assert all(torch.equal(a["rank_pattern"][k], b["rank_pattern"][k]) for k in a["rank_pattern"])
    for name in ("ipt", "exp_avg_ipt", "exp_avg_unc"):
        assert a[name] and a[name].keys() == b[name].keys()
        assert all(torch.equal(a[name][k], b[name][k]) for k in a[name]), name
    assert sum(int(m.sum()) for m in a["rank_pattern"].values()) < 4 * len(a["rank_pattern"])  # ranks were pruned


def test_data_tokenizer_pretrained_takes_the_generators_own(run, tmp_path, capsys):
    """``data.tokenizer: pretrained`` (the shipped SmolLM2 YAMLs) resolves to
    ``model.generator.pretrained``, or to ``model.init_checkpoint``'s stored tokenizer; with
    neither it is one clear line (rc 2)."""
    root, base, mle, common = run
    tok = [a for a in common if not a.startswith("--data.init_args.tokenizer=")]
    assert len(tok) == len(common) - 1
    rc = main(["fit", "--config", str(EN / "smollm2_lora_mle.yaml"), *tok, "--trainer.max_steps=1",
               "--trainer.val_check_interval=1", f"--trainer.logger.init_args.save_dir={tmp_path}",
               f"--model.init_args.generator.pretrained={base}", "--model.init_args.num_text_samples=0"])
    assert rc == 0
    stored = load_artifacts(tmp_path / "poetry_en" / "smollm2_lora_mle").tokenizer
    assert stored.get_vocab() == load_artifacts(mle).tokenizer.get_vocab()  # the base's BPE, not a new one
    rc = main(["fit", "--config", str(EN / "smollm2_lora_seqgan.yaml"), *tok, "--trainer.max_epochs=1",
               "--trainer.limit_train_batches=1", f"--trainer.logger.init_args.save_dir={tmp_path}",
               f"--model.init_args.init_checkpoint={mle}", "--model.init_args.g_batch_size=2",
               "--model.init_args.d_num_samples=4", "--model.init_args.d_batch_size=4",
               "--model.init_args.num_text_samples=0", "--model.init_args.discriminator.filter_sizes=[2]",
               "--model.init_args.discriminator.num_filters=[4]"])
    assert rc == 0
    adv = load_artifacts(tmp_path / "poetry_en" / "smollm2_lora_seqgan").tokenizer
    assert adv.get_vocab() == stored.get_vocab()
    capsys.readouterr()
    rc = main(["fit", "--config", str(REPO / "experiments/poetry_zh/mle.yaml"), "--data.init_args.tokenizer=pretrained",
               f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.max_steps=1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) <= 2 and "data.tokenizer: pretrained" in err[-1] and "generator.pretrained" in err[-1]
