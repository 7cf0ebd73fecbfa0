"""The SeqGAN synthetic benchmark (issue 5): the experiments/oracle configs, the LSTM
generator under the rollout layout contract, and ``gan-writer oracle-report`` on tiny runs
(a small random oracle) checked against their event files."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
import yaml

from gan_writer.adversarial import mc_rollout_rewards, sample_with_state
from gan_writer.analysis import oracle_report as rep
from gan_writer.analysis.oracle_collect import collect
from gan_writer.cli import main
from gan_writer.commands import oracle_report as cmd
from gan_writer.models.lstm import LSTMGenerator
from gan_writer.sampling import mask_after_eos
from helpers import unique_probability

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "experiments" / "oracle"
CPU = PAPER / "cpu"


def load(path: Path) -> dict:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def updates(cfg: dict) -> int:
    return int(cfg["trainer"]["max_epochs"]) * int(cfg["trainer"]["limit_train_batches"])


# ---- configs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("folder", [PAPER, CPU], ids=["paper", "cpu"])
@pytest.mark.parametrize("stage", list(rep.STAGES))
def test_configs_parse_with_the_cli(folder, stage, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(folder / rep.STAGES[stage][0]), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["data"]["class_path"] == "gan_writer.data.oracle.OracleDataModule"
    assert printed["data"]["init_args"]["oracle_params"] == "oracle/target_params_py3.pkl"


def test_paper_configs_have_the_seqgan_settings():
    mle, disc, adv, cont = (load(PAPER / rep.STAGES[s][0]) for s in rep.STAGES)
    m = mle["model"]["init_args"]
    assert mle["trainer"]["max_epochs"] == 120 and m["lr"] == 0.01 and m["weight_decay"] == 0.0
    assert mle["data"]["init_args"]["batch_size"] == 64 and mle["trainer"]["gradient_clip_val"] == 5.0
    assert m["generator"] == {"backend": "lstm", "emb_dim": 32, "hidden_dim": 32}
    d = disc["model"]["init_args"]
    assert disc["trainer"]["max_epochs"] == 150 and d["negatives_every_n_epochs"] == 3 and d["lr"] == 1e-4
    assert d["num_negatives"] == 10000
    assert d["discriminator"]["filter_sizes"] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20]
    assert d["discriminator"]["num_filters"] == [100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160]
    a = adv["model"]["init_args"]
    assert updates(adv) == 200 and a["rollout_num"] == 16 and a["rollout_update_rate"] == 0.8
    assert (a["d_steps"], a["d_epochs"], a["d_num_samples"], a["d_lr"], a["g_lr"]) == (5, 3, 10000, 1e-4, 0.01)
    assert a["g_batch_size"] == 64 and a["advantage"] == "none" and a["reward"] == "mc_rollout"
    assert a["loss_aggregation"] == "sum" and a["grad_clip"] == 5.0  # SeqGAN sums -log pi * Q, clips at 5
    # equal training: as many MLE updates as adversarial generator updates
    assert updates(cont) == updates(adv) * a["g_steps"] and cont["model"]["init_args"]["lr"] == 0.01


def test_cpu_configs_keep_the_baseline_equal():
    adv, cont = load(CPU / "seqgan.yaml"), load(CPU / "mle_continue.yaml")
    assert updates(cont) == updates(adv) * adv["model"]["init_args"]["g_steps"]
    for stage in rep.STAGES:  # the report's run layout is set by the command, per seed
        assert load(CPU / rep.STAGES[stage][0])["trainer"]["logger"]["init_args"]["name"] == f"oracle_cpu/{stage}"


# ---- the LSTM under the rollout layout contract ----------------------------------------------------
class RecordingDisc:
    """A probability unique to each sequence (a hash of its real tokens); records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    value = staticmethod(unique_probability)

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.value(ids, mask)
        self.calls.append((ids.clone(), mask.clone(), out))
        return out


def lstm(eos: int | None, seed: int = 0) -> LSTMGenerator:
    torch.manual_seed(seed)
    gen = LSTMGenerator(40, emb_dim=8, hidden_dim=8, bos_token_id=0, eos_token_id=eos, pad_token_id=2, init_std=0.5)
    with torch.no_grad():
        if eos is not None:
            gen.out.bias[eos] += 2.0  # some rows and completions end early
    return gen


@pytest.mark.parametrize("eos", [None, 1], ids=["fixed-length", "with-eos"])
@pytest.mark.parametrize("use_state", [True, False], ids=["sampling-state", "encoded"])
def test_lstm_reward_layout_each_reward_is_the_mean_of_its_own_rollouts(eos, use_state):
    gen, disc, R, T = lstm(eos), RecordingDisc(), 4, 7
    ids, state = sample_with_state(gen, 6, T, generator=torch.Generator().manual_seed(1))
    mask = mask_after_eos(ids, eos)
    lengths = mask.sum(1)
    if eos is not None:
        assert lengths.min() < T and lengths.max() > 2  # the batch exercises early ends
    rewards = mc_rollout_rewards(gen, disc, ids, mask, R, state=state if use_state else None,
                                 generator=torch.Generator().manual_seed(2))
    assert rewards.shape == ids.shape
    full_ids, full_mask, full = disc.calls[0]
    assert torch.equal(full_ids, ids)
    rollout_calls = disc.calls[1:]
    assert len(rollout_calls) == int(lengths.max()) - 1  # one call per prefix length t (one group)
    for t, (seq, seq_mask, vals) in enumerate(rollout_calls, start=1):
        rows = [b for b in range(ids.size(0)) if lengths[b] > t]
        assert seq.size(0) == len(rows) * R
        for k, b in enumerate(rows):
            block = slice(k * R, (k + 1) * R)
            assert torch.equal(seq[block, :t], ids[b, :t].expand(R, t)), (b, t)  # the rollouts of y_b[:t]
            assert torch.equal(seq_mask[block], mask_after_eos(seq[block], eos))
            assert float(rewards[b, t - 1]) == pytest.approx(float(vals[block].mean()), abs=1e-6), (b, t)
    for b in range(ids.size(0)):
        L = int(lengths[b])
        assert float(rewards[b, L - 1]) == pytest.approx(float(full[b]), abs=1e-7)  # token L_b: D(y) itself
        assert torch.all(rewards[b, L:] == 0)  # padding


@pytest.mark.parametrize("use_state", [True, False], ids=["sampling-state", "encoded"])
def test_lstm_rollouts_continue_their_own_prefix(use_state):
    """Each prefix's completions equal (same random stream) completions decoded from an
    independent encoding of that very prefix, so a rollout branched off the wrong row or the
    wrong position of the decoder state would show."""
    from gan_writer.sampling import decode

    gen, disc, R, T = lstm(None, seed=3), RecordingDisc(), 3, 6
    ids, state = sample_with_state(gen, 5, T, generator=torch.Generator().manual_seed(4))
    mc_rollout_rewards(gen, disc, ids, mask_after_eos(ids, None), R, state=state if use_state else None,
                       generator=torch.Generator().manual_seed(5))
    rng = torch.Generator().manual_seed(5)
    gen.eval()
    with torch.no_grad():
        for t, (seq, _, _) in enumerate(disc.calls[1:], start=1):
            logits, st = gen.encode(ids[:, :t])
            expected = decode(gen.step, gen.slice_state(st, None, repeats=R), logits.repeat_interleave(R, 0), T - t,
                              eos_token_id=None, pad_token_id=gen.pad_token_id, generator=rng)
            assert torch.equal(seq[:, t:], expected), t


# ---- the report on tiny runs ---------------------------------------------------------------------------
def tiny_configs(folder: Path) -> Path:
    """The CPU configs shrunk to a random 50-token oracle, 8-token sequences and a few batches."""
    folder.mkdir(parents=True, exist_ok=True)
    for stage, (name, _) in rep.STAGES.items():
        cfg = load(CPU / name)
        cfg["data"]["init_args"].update(oracle_params=None, oracle_seed=3, vocab_size=50, num_train=256, num_valid=64,
                                        seq_len=8)
        cfg["trainer"].update(max_epochs=2, log_every_n_steps=1)
        if stage != "mle":
            cfg["trainer"]["limit_train_batches"] = 3
        for cb in cfg["trainer"]["callbacks"]:
            if cb["class_path"].endswith("TextMetricsCallback"):
                cb["init_args"]["num_samples"] = 200
        model = cfg["model"]["init_args"]
        if stage == "disc":
            model["num_negatives"] = 128
            model["discriminator"].update(embed_dim=8, filter_sizes=[1, 2, 3], num_filters=[8, 8, 8])
        if stage == "seqgan":
            model.update(g_batch_size=8, rollout_num=2, d_num_samples=32, d_batch_size=16)
        (folder / name).write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return folder


def in_process(argv: list[str], log: Path) -> int:
    return main(argv + ["--trainer.enable_progress_bar=false"]) or 0


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("oracle")
    configs, root = tiny_configs(base / "configs"), base / "runs"
    launched = rep_launch(root, configs, [0, 1])
    assert launched == [(s, st) for s in (0, 1) for st in rep.STAGES]
    return base, configs, root


def rep_launch(root, configs, seeds, stages=None):
    return cmd.launch_missing(root, configs, seeds, runner=in_process, stages=stages)


def test_launch_never_reruns_or_overwrites(tiny_runs):
    base, configs, root = tiny_runs
    before = {p: p.stat().st_mtime for p in root.rglob("last.ckpt")}
    assert rep_launch(root, configs, [0, 1]) == []  # everything complete: nothing launched
    # an incomplete run (no final checkpoint) is left alone and a new version is made beside it
    broken = root / "seed_2" / "mle" / "version_0"
    broken.mkdir(parents=True)
    (broken / "config.yaml").write_text("trainer: {max_epochs: 2}\n")
    assert rep.find_run(root, 2, "mle") is None
    assert rep_launch(root, configs, [2], stages=["mle"]) == [(2, "mle")]
    assert (broken / "config.yaml").read_text() == "trainer: {max_epochs: 2}\n"
    assert rep.find_run(root, 2, "mle").path.name == "version_1"
    assert {p: p.stat().st_mtime for p in before} == before
    # each stage started from the checkpoint of the one before
    seqgan = rep.find_run(root, 0, "seqgan")
    assert seqgan.config["model"]["init_args"]["init_checkpoint"] == str(rep.find_run(root, 0, "disc").ckpt)


def table(markdown: str) -> dict[str, list[str]]:
    rows = {}
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| model |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    assert header == ["model", "NLL-oracle", "seeds", "per seed", "published (paper, Table 1)",
                      "published (SeqGAN log)", "NLL-test"]
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells
    return rows


def test_report_matches_the_runs_and_their_event_files(tiny_runs, monkeypatch):
    base, configs, root = tiny_runs
    out = base / "docs" / "oracle.md"
    monkeypatch.chdir(base)
    args = ["--runs-root", str(root), "--configs", str(configs), "--seeds", "0,1", "--num-samples", "300",
            "--out", str(out)]
    assert main(["oracle-report", *args]) == 0
    md = out.read_text(encoding="utf-8")
    assert (base / "docs" / "oracle_nll.png").stat().st_size > 10_000
    rows = table(md)
    assert [label.split(" (")[0] for label in rows] == [
        "oracle's own samples", "uniformly random tokens", "training-data unigram", "untrained generator",
        "random LSTM with N(0, 1) parameters", "MLE after 1 epoch", "MLE, end of pretraining", "MLE continued", "SeqGAN"]
    # the 1-epoch row is the first logged point of each seed's MLE curve, beside the SeqGAN log's first entry
    epoch1 = rows[next(k for k in rows if k.startswith("MLE after 1 epoch"))]
    firsts = [rep.read_scalars(rep.find_run(root, seed, "mle").path, "metrics/nll_oracle")[0][1] for seed in (0, 1)]
    assert epoch1[3] == ", ".join(f"{v:.3f}" for v in firsts) and epoch1[5].startswith("10.172")
    oracle_row, untrained, mle, cont, adv = (rows[next(k for k in rows if k.startswith(p))] for p in (
        "oracle's own", "untrained", "MLE, end", "MLE continued", "SeqGAN"))
    assert (mle[0], cont[0], adv[0]) == ("MLE, end of pretraining (2 epochs)", "MLE continued (+6 updates)",
                                         "SeqGAN (+6 adversarial batches)")
    assert untrained[4] == "10.310" and mle[4] == "9.038" and adv[4] == "8.736"
    assert mle[5].startswith("9.071") and adv[5].startswith("8.683")

    # per-seed values are the checkpoints' own evaluations; mean ± std over the two seeds
    per_stage = {}
    for cells, stage in ((mle, "mle"), (cont, "mle_continue"), (adv, "seqgan")):
        vals = []
        for seed in (0, 1):
            run = rep.find_run(root, seed, stage)
            stored = list(json.loads((run.path / "oracle_eval.json").read_text()).values())
            assert len(stored) == 1 and stored[0]["num_samples"] == 300
            vals.append(stored[0]["nll_oracle"])
        per_stage[stage] = vals
        assert cells[3] == ", ".join(f"{v:.3f}" for v in vals)
        m, s = sum(vals) / 2, math.sqrt(sum((v - sum(vals) / 2) ** 2 for v in vals))
        assert cells[1] == f"{m:.3f} ± {s:.3f}" and cells[2] == "2"
    # an independent re-evaluation of one checkpoint gives the table's number
    from gan_writer.checkpoint import load_artifacts

    art = load_artifacts(rep.find_run(root, 1, "seqgan").ckpt)
    oracle, valid = rep.oracle_from_meta(art.meta["data"])
    again = rep.evaluate_generator(art.generator, oracle, valid, 300, 8, rep.EVAL_SEED_OFFSET + 1)
    assert f"{again['nll_oracle']:.3f}" == adv[3].split(", ")[1]
    # the oracle's own samples score below the untrained generator (the entropy floor)
    assert float(oracle_row[1].split(" ")[0]) < float(untrained[1].split(" ")[0])
    # the gap line is SeqGAN minus continued MLE, per seed
    gaps = [a - b for a, b in zip(per_stage["seqgan"], per_stage["mle_continue"])]
    assert f"seed 0: {gaps[0]:+.3f}, seed 1: {gaps[1]:+.3f}" in md

    # the curves are the logged metrics/nll_oracle, and the wall times the event files' own
    run = rep.find_run(root, 0, "mle")
    logged = rep.read_scalars(run.path, "metrics/nll_oracle")
    assert len(logged) == 2  # one per epoch
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for seed in (0, 1):
        for stage in rep.STAGES:
            r = rep.find_run(root, seed, stage)
            acc = EventAccumulator(str(r.path))
            acc.Reload()
            last = max(e.wall_time for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag))
            minutes = (last - acc.FirstEventTimestamp()) / 60
            line = next(ln for ln in md.splitlines() if f"seed_{seed}/{stage}/{r.path.name}`" in ln)
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert cells[:2] == [str(seed), stage] and cells[5] == f"{minutes:.1f}"
            assert cells[6] == "—"  # launched in-process: no log of a gan-writer fit process
    report = collect(root, str(configs), [0, 1], 300, None, "x", "oracle_nll.png")
    assert [v for _, v in report["curves"]["mle"][0]] == [v for _, v, _ in logged]
    assert [x for x, _ in report["curves"]["mle"][0]] == [1.0, 2.0]  # epochs
    seq_curve = [(s + 1, v) for s, v, _ in rep.read_scalars(rep.find_run(root, 0, "seqgan").path, "metrics/nll_oracle")]
    assert report["curves"]["seqgan"][0] == [(0, logged[-1][1])] + seq_curve
    assert [x for x, _ in seq_curve] == [3, 6]  # generator updates after pretraining


def test_reproduce_oracle_table_scores_the_runs_as_oracle_report_does(tiny_runs, tmp_path):
    """The `oracle` block of a reproduce recipe (experiments/oracle/estimators.yaml): each cell
    is the run's own NLL-oracle / NLL-test, Δ is per seed against the named equal-update MLE run,
    and the evaluation shares oracle-report's cache (the same number from both commands)."""
    from gan_writer.analysis.oracle_table import seed_direction
    from gan_writer.analysis.published import begin_marker, end_marker, read_tables
    from gan_writer.checkpoint import load_artifacts
    from gan_writer.commands.reproduce import reproduce

    base, configs, root = tiny_runs
    block = {"name": "oracle/estimators", "oracle": {"n": 300, "plot": str(tmp_path / "curves.png")}, "seeds": [0, 1],
             "rows": [["MLE continued", "mle_continue", None], ["SeqGAN", "seqgan", "mle_continue"]]}
    recipe = {"runs": [{"name": "mle", "config": "unused.yaml", "seeds": [0, 1]}], "tables": [block]}
    doc = tmp_path / "estimators.md"
    doc.write_text(f"# results\n\n{begin_marker('oracle/estimators')}\nold\n{end_marker('oracle/estimators')}\n")
    fitted = []
    status, diffs = reproduce(recipe, root, doc, write=True, fit=lambda argv: fitted.append(argv) or 0)
    assert status == 0 and list(diffs) == ["oracle/estimators"] and len(fitted) == 2
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    caption, table = read_tables(doc.read_text())["oracle/estimators"].split("\n\n")
    assert "NLL-oracle of 300 samples" in caption and "training seeds 0, 1" in caption
    lines = table.splitlines()
    assert lines[0] == ("| run | NLL-oracle | per seed | NLL-test | Δ NLL-oracle per seed vs equal-update MLE | "
                        "Δ NLL-test per seed |")
    cont, adv = ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:4])
    scores = {}
    for stage in ("mle_continue", "seqgan"):
        for seed in (0, 1):
            art = load_artifacts(rep.find_run(root, seed, stage).ckpt)
            oracle, valid = rep.oracle_from_meta(art.meta["data"])
            scores[stage, seed] = rep.evaluate_generator(art.generator, oracle, valid, 300, 8, rep.EVAL_SEED_OFFSET + seed)
    assert cont[2] == ", ".join(f"{scores['mle_continue', s]['nll_oracle']:.3f}" for s in (0, 1))
    assert adv[2] == ", ".join(f"{scores['seqgan', s]['nll_oracle']:.3f}" for s in (0, 1))
    vals = [scores["seqgan", s]["nll_test"] for s in (0, 1)]
    assert adv[3] == f"{sum(vals) / 2:.3f} ± {abs(vals[0] - vals[1]) / math.sqrt(2):.3f}"
    deltas = [scores["seqgan", s]["nll_oracle"] - scores["mle_continue", s]["nll_oracle"] for s in (0, 1)]
    assert adv[4] == ", ".join(f"{d:+.3f}" for d in deltas) + f": {seed_direction(deltas)}"
    assert cont[4] == cont[5] == "—"
    for seed in (0, 1):  # one cache entry per run: oracle-report (same samples, same seed) reads this one
        stored = json.loads((rep.find_run(root, seed, "seqgan").path / "oracle_eval.json").read_text())
        assert len(stored) == 1
    status, diffs = reproduce(recipe, root, doc, fit=lambda argv: 0)
    assert status == 0 and not diffs  # regenerated equal: the check passes
    # the recipe's oracle_report block: oracle-report over the same runs, written only with write
    report = tmp_path / "oracle.md"
    recipe["oracle_report"] = {"seeds": [0, 1], "out": str(report), "num_samples": 300}
    reproduce(recipe, root, doc, fit=lambda argv: 0)
    assert not report.exists()
    reproduce(recipe, root, doc, write=True, fit=lambda argv: 0)
    text = report.read_text()
    assert f"gan-writer oracle-report --cpu --seeds 0,1 --runs-root {root}" in text
    assert f"seed_1/seqgan/{rep.find_run(root, 1, 'seqgan').path.name}`" in text
    assert "evaluated on 300 fresh samples" in text


def test_seed_direction_and_bad_oracle_rows(tmp_path):
    from gan_writer.analysis.oracle_table import oracle_rows, seed_direction

    assert seed_direction([-0.1, -0.2, -1e-4]) == "lower at every seed"
    assert seed_direction([0.1, 0.3]) == "higher at every seed"
    assert seed_direction([0.1, -0.3]) == "no verdict (signs differ)"
    assert seed_direction([0.0, -0.3]) == "no verdict (signs differ)"
    assert seed_direction([-0.3]) == "no verdict (one seed)"
    block = {"name": "t", "oracle": {"n": 10}, "seeds": [0], "rows": [["a", "x", "nonesuch"]]}
    with pytest.raises(ValueError, match="row 'a' compares with 'nonesuch', not a run of the table"):
        oracle_rows(block, tmp_path, evaluate=lambda *a: {})
    with pytest.raises(ValueError, match=r"every row must be \[label, run name, baseline run or null\]"):
        oracle_rows({**block, "rows": [["a", "x"]]}, tmp_path, evaluate=lambda *a: {})
    from gan_writer.analysis.oracle_table import evaluate_oracle_run

    with pytest.raises(FileNotFoundError, match="seed_0/x: no complete run"):
        evaluate_oracle_run(tmp_path, "x", 0, 10)


def test_seqgan_log_parser(shared_data):
    log = rep.parse_seqgan_log(shared_data / "oracle" / "seqgan_experiment_log.txt")
    assert log["pretrain"][0] == (0, 10.1716) and log["pretrain"][-1] == (115, 9.07058)
    assert log["adversarial"][0] == (0, 9.08457) and log["adversarial"][-1] == (150, 8.6832)
    assert len(log["pretrain"]) == 24 and len(log["adversarial"]) == 31


def test_bad_seeds_and_missing_configs(tmp_path, capsys):
    with pytest.raises(SystemExit, match="seeds"):
        main(["oracle-report", "--seeds", "a,b"])
    assert main(["oracle-report", "--configs", str(tmp_path), "--runs-root", str(tmp_path)]) == 2
    assert re.search(r"lacks mle.yaml", capsys.readouterr().err)
    capsys.readouterr()
    out = tmp_path / "report.md"
    assert main(["oracle-report", "--cpu", "--runs-root", str(tmp_path / "none"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gan-writer oracle-report: error: no complete MLE run under ")
    assert "--run" in err[0] and not out.exists()
