"""The MLE stage on Lightning DDP: 2 CPU processes on gloo (``--trainer.strategy=ddp``), the
same parameters on both ranks after training, changed from the start, checkpoints written once."""
import json
import os
import subprocess
import sys

from gan_writer.safe_load import load_checkpoint
from tiny_runs import REPO, callback, mle_args


def test_mle_on_two_cpu_processes_keeps_ranks_identical(tmp_path, shared_data):
    args = mle_args(tmp_path, "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp",
                    callback("RankChecksum", folder=str(tmp_path)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{REPO / 'tests'}{os.pathsep}{REPO}"}
    proc = subprocess.run([sys.executable, "-m", "gan_writer.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in ranks)
    assert ranks[0]["end"] == ranks[1]["end"] and ranks[0]["start"] == ranks[1]["start"]
    assert ranks[0]["end"] != ranks[0]["start"]
    ckpts = sorted(p.name for p in (tmp_path / "poetry_zh" / "mle").rglob("*.ckpt"))
    assert ckpts == ["best-epoch=0-step=2.ckpt", "last.ckpt"]  # 64 samples / 16 per batch / 2 ranks = 2 steps
    assert load_checkpoint(next((tmp_path / "poetry_zh" / "mle").rglob("last.ckpt")))["global_step"] == 2
