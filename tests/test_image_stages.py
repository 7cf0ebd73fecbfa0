"""Image → poem through the real CLI: pair data and its errors, the image-MLE and
multi-adversarial stages (fast_dev_run and short runs), and poems for a photo from the
resulting checkpoints (the ``--image`` path)."""
import json
import re
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_writer.checkpoint import load_artifacts, payload
from gan_writer.cli import main
from gan_writer.multimodal import ImagePrefixGenerator, NoImageConditioningError, load_for_image
from gan_writer.multimodal.data import ImagePoemDataModule, read_pairs
from helpers import tiny_gpt2
from image_helpers import KEYWORDS, tiny_clip_dir, write_pairs

REPO = Path(__file__).resolve().parents[1]
TINY = ["--trainer.enable_progress_bar=false", "--trainer.log_every_n_steps=1"]


def scalars(run: Path, tag: str) -> list[float]:
    ea = EventAccumulator(str(run))
    ea.Reload()
    return [e.value for e in ea.Scalars(tag)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("image_poem")
    clip = tiny_clip_dir(root / "clip")
    pairs = write_pairs(root / "pairs")
    return root, clip, pairs


def data_args(pairs, clip, tokenizer=None):
    args = [f"--data.init_args.pairs={pairs}", f"--data.init_args.image_encoder={clip}", "--data.init_args.max_length=8",
            "--data.init_args.batch_size=8", "--data.init_args.valid_fraction=0.3"]
    return args + ([f"--data.init_args.tokenizer={tokenizer}"] if tokenizer else [])


def mle(root, clip, pairs, *extra):
    assert main(["fit", "--config", str(REPO / "experiments/image_poem/mle.yaml"), *TINY,
          f"--trainer.logger.init_args.save_dir={root}", f"--model.init_args.image_encoder={clip}",
          "--model.init_args.generator.n_layer=1", "--model.init_args.generator.n_embd=32",
          "--model.init_args.generator.n_head=2", "--model.init_args.generator.n_positions=16",
          "--model.init_args.prefix.prefix_length=4", "--model.init_args.lr=0.01", "--model.init_args.num_text_samples=2",
          *data_args(pairs, clip), *extra]) == 0


def adversarial(root, init, clip, pairs, *extra):
    assert main(["fit", "--config", str(REPO / "experiments/image_poem/adversarial.yaml"), *TINY,
          f"--trainer.logger.init_args.save_dir={root}", f"--model.init_args.init_checkpoint={init}",
          "--model.init_args.images_per_step=2", "--model.init_args.samples_per_image=2",
          "--model.init_args.rollout_num=2", "--model.init_args.d_pretrain_steps=0",
          "--model.init_args.multimodal_discriminator.embed_dim=8", "--model.init_args.multimodal_discriminator.hidden_dim=16",
          "--model.init_args.num_text_samples=1", *data_args(pairs, clip, tokenizer=init), *extra]) == 0


@pytest.fixture(scope="module")
def mle_run(setup):
    root, clip, pairs = setup
    mle(root, clip, pairs, "--trainer.max_epochs=3")
    return root / "image_poem" / "mle" / "version_0"


def test_pairs_file_errors_name_file_and_line(tmp_path, setup):
    _, clip, pairs = setup
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image": "a.png", "text": "x"}\n{oops\n', encoding="utf-8")
    (tmp_path / "a.png").write_bytes((pairs.parent / "coffee.png").read_bytes())
    with pytest.raises(ValueError, match=r"line 2 of .*bad.jsonl is not valid JSON"):
        read_pairs(bad)
    bad.write_text('{"image": "a.png"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 1 of .*needs string keys"):
        read_pairs(bad)
    bad.write_text('{"image": "a.png", "text": "x"}\n\n{"image": "gone.png", "text": "y"}\n', encoding="utf-8")
    with pytest.raises(FileNotFoundError, match=r"gone.png \(line 3 of .*bad.jsonl\) not found"):
        read_pairs(bad)
    (tmp_path / "broken.png").write_bytes(b"this is not an image")
    bad.write_text('{"image": "a.png", "text": "x"}\n{"image": "broken.png", "text": "y"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"cannot read image .*broken.png \(line 2 of .*bad.jsonl\)"):
        ImagePoemDataModule(str(bad), str(clip), tokenizer="word")


def test_data_module_splits_by_image_and_batches_features(setup):
    _, clip, pairs = setup
    dm = ImagePoemDataModule(str(pairs), str(clip), tokenizer="word", max_length=8, batch_size=4, valid_fraction=0.3,
                             patch_features=True)
    train_imgs = {i for _, i in dm.datasets["train"]}
    valid_imgs = {i for _, i in dm.datasets["valid"]}
    assert len(valid_imgs) == 2 and len(train_imgs) == 5 and not train_imgs & valid_imgs
    batch = next(iter(dm.train_dataloader()))
    assert batch["features"].shape == (4, 32) and batch["patch_features"].shape == (4, 17, 32)
    torch.testing.assert_close(batch["features"], dm.features[batch["image_index"]])
    assert dm.encoder_identity["class"] == "CLIPVisionModel"


def test_image_mle_trains_uses_the_image_and_saves_a_self_contained_checkpoint(mle_run, setup):
    _, clip, _ = setup
    nll = scalars(mle_run, "train/nll")
    assert nll[-1] < nll[0]
    assert len(scalars(mle_run, "val/image_gain")) == 3 and scalars(mle_run, "val/nll_mismatched")
    art = load_artifacts(mle_run)
    assert isinstance(art.generator, ImagePrefixGenerator) and art.meta["stage"] == "ImageMLEModule"
    enc = art.generator.encoder_identity
    assert enc["path"] == str(clip.resolve()) and enc["config"]["hidden_size"] == 32
    assert not any(k.startswith("encoder") for k in torch.load(next(mle_run.rglob("last.ckpt")), weights_only=False)["state_dict"])


def test_stages_fast_dev_run(mle_run, setup, tmp_path):
    root, clip, pairs = setup
    mle(tmp_path, clip, pairs, "--trainer.fast_dev_run=true", "--model.init_args.prefix.mapper=transformer",
        "--model.init_args.prefix.feature=patch", "--model.init_args.prefix.num_layers=1",
        "--model.init_args.prefix.num_heads=2", "--data.init_args.patch_features=true")
    adversarial(tmp_path, mle_run, clip, pairs, "--trainer.fast_dev_run=true", "--model.init_args.rollout_num=0",
                "--model.init_args.kl_coef=0.1", "--model.init_args.mle_steps=1", "--model.init_args.baseline=none")


def test_image_adversarial_stage_rewards_and_checkpoint(mle_run, setup, tmp_path):
    from gan_writer.systems.discriminator import load_discriminator
    from gan_writer.systems.image_adversarial import load_multimodal_discriminator

    _, clip, pairs = setup
    adversarial(tmp_path, mle_run, clip, pairs, "--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
                "--trainer.limit_val_batches=1")
    run = tmp_path / "image_poem" / "adversarial" / "version_0"
    rewards = scalars(run, "adv/reward_mean")
    assert len(rewards) == 2 and all(0.0 < r < 1.0 for r in rewards)
    assert abs(scalars(run, "adv/kl_to_mle")[0]) < 1e-4  # first step: generator == MLE reference
    for tag in ("adv/reward_multimodal", "adv/reward_style", "adv/g_loss", "disc/mm_loss", "disc/mm_acc",
                "disc/mm_acc_generated", "disc/style_loss", "val/nll", "val/mm_prob_paired", "val/mm_prob_paired_mismatched"):
        assert scalars(run, tag), tag
    g0, g1 = load_artifacts(mle_run).generator.state_dict(), load_artifacts(run).generator.state_dict()
    moved = [k for k in g0 if not torch.equal(g0[k], g1[k])]
    assert moved  # the policy-gradient steps changed the generator
    mm, spec = load_multimodal_discriminator(str(run))
    assert spec["feature_dim"] == 32 and load_discriminator(str(run))[1]["config"]["kind"] == "cnn"


def test_poems_for_a_photo_from_the_checkpoint(mle_run, setup, capsys):
    _, clip, pairs = setup
    photo = pairs.parent / "chelsea.png"
    gen, tok = load_for_image(mle_run, photo, clip)
    ids = gen.sample(3, 6, generator=torch.Generator().manual_seed(0))
    assert ids.shape[0] == 3 and gen.max_positions == 16 - 4
    words = {w for ws in KEYWORDS.values() for w in ws}
    assert main(["image-poem", "--ckpt", str(mle_run), "--image", str(photo), "--image-encoder", str(clip), "--n", "2",
                 "--max-new-tokens", "6"]) == 0
    poems = [p for p in capsys.readouterr().out.split("\n\n") if p.strip()]
    assert len(poems) == 2 and all(set(p.split()) <= words for p in poems)


def test_image_path_errors_say_what_is_needed(mle_run, setup, tmp_path, capsys):
    _, clip, pairs = setup
    photo = pairs.parent / "rocket.png"
    assert main(["image-poem", "--ckpt", str(mle_run), "--image", str(photo)]) == 2
    assert "pass --image-encoder DIR" in capsys.readouterr().err
    # a text-only checkpoint
    gen = tiny_gpt2()
    from gan_writer.tokenization import char_tokenizer

    text_ckpt = tmp_path / "text.ckpt"
    torch.save({"gan_writer": payload(gen, char_tokenizer(["abc"]), stage="MLEModule"),
                "state_dict": {f"generator.{k}": v for k, v in gen.state_dict().items()}}, text_ckpt)
    with pytest.raises(NoImageConditioningError, match="has no image conditioning.*: drop --image, or train"):
        load_for_image(text_ckpt, photo, clip)
    assert main(["image-poem", "--ckpt", str(text_ckpt), "--image", str(photo), "--image-encoder", str(clip)]) == 2
    assert f"for text-only poems use gan-writer generate --ckpt {text_ckpt}, or train" in capsys.readouterr().err
    # --image that is no photo: a text file, a folder (each named, with what to give instead; no "drop the line")
    for image, says in ((REPO / "README.md", "cannot read image .*README.md \\(--image\\): .*; give a photo file"),
                        (tmp_path, "is a folder; give a photo file")):
        assert main(["image-poem", "--ckpt", str(mle_run), "--image", str(image), "--image-encoder", str(clip)]) == 2
        err = capsys.readouterr().err
        assert re.search(says, err) and "drop the line" not in err and len(err.strip().splitlines()) == 1, err
    # another encoder architecture than the one trained with
    other = tiny_clip_dir(tmp_path / "clip16", hidden=16)
    with pytest.raises(ValueError, match="feature_dim=32.*feature_dim=16"):
        load_for_image(mle_run, photo, other)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_for_image(mle_run, tmp_path / "missing.png", clip)
    # the unconditioned generator refuses `generate`
    assert main(["generate", "--ckpt", str(mle_run)]) == 2
    assert "image-conditioned" in capsys.readouterr().err
    assert json.loads(json.dumps(load_artifacts(mle_run).generator.spec()))["backend"] == "image_prefix"


def test_image_adversarial_same_seed_same_weights(mle_run, setup, tmp_path):
    from gan_writer.systems.image_adversarial import load_multimodal_discriminator

    _, clip, pairs = setup
    weights = []
    for name in ("a", "b"):
        adversarial(tmp_path / name, mle_run, clip, pairs, "--trainer.max_steps=1", "--trainer.limit_val_batches=0")
        run = tmp_path / name / "image_poem" / "adversarial" / "version_0"
        weights.append((load_artifacts(run).generator.state_dict(), load_multimodal_discriminator(str(run))[0].state_dict()))
    (ga, da), (gb, db) = weights
    assert all(torch.equal(ga[k], gb[k]) for k in ga) and all(torch.equal(da[k], db[k]) for k in da)
    g0 = load_artifacts(mle_run).generator.state_dict()
    assert any(not torch.equal(g0[k], ga[k]) for k in g0)  # a policy-gradient step was taken


def test_cli_reports_a_missing_pairs_file_and_a_missing_encoder(setup, tmp_path, capsys):
    _, clip, pairs = setup
    config = str(REPO / "experiments/image_poem/mle.yaml")
    assert main(["fit", "--config", config, f"--data.init_args.pairs={tmp_path / 'none.jsonl'}",
                 f"--data.init_args.image_encoder={clip}"]) == 2
    assert "none.jsonl not found" in capsys.readouterr().err
    assert main(["fit", "--config", config, f"--data.init_args.pairs={pairs}",
                 f"--data.init_args.image_encoder={tmp_path / 'no_clip'}"]) == 2
    assert "no_clip has no config.json" in capsys.readouterr().err


def test_write_poem_with_an_image(mle_run, setup, capsys):
    """``gan-writer write poem --image``: the photo-bound generator goes through the form
    constraints and reranking of ``write``; the errors say what is missing."""
    _, clip, pairs = setup
    photo = pairs.parent / "chelsea.png"
    args = ["write", "poem", "--ckpt", str(mle_run), "--form", "free", "--n", "2", "--candidates", "4", "--json"]
    assert main([*args, "--image", str(photo), "--image-encoder", str(clip)]) == 0
    poems = json.loads(capsys.readouterr().out)
    words = {w for ws in KEYWORDS.values() for w in ws}
    assert len(poems) == 2 and all(set(p["text"].split()) <= words and p["text"].strip() for p in poems)
    assert main(args) == 2
    assert "is image-conditioned: pass --image PHOTO --image-encoder DIR" in capsys.readouterr().err
    assert main([*args, "--image", str(photo)]) == 2
    assert "pass --image-encoder DIR" in capsys.readouterr().err
