"""Shared pytest set-up: one torch thread (two threads on two busy cores stall), the
shared corpora directory, and small helpers used across the suite."""
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

# Lightning before any test module imports nltk: typing caches ``Optional[Union[...]]`` by set
# equality, and nltk's imports (scipy, sklearn) build ``Optional[Union[float, int]]`` first, so a
# Trainer imported after them reads ``--trainer.limit_val_batches=1`` as 1.0 (the whole
# validation set: 2,368 validation batches instead of 1 in tests/test_adapter_stages.py).
import lightning.pytorch  # noqa: E402,F401

torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GAN_WRITER_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()
os.environ["GAN_WRITER_DATA"] = str(SHARED_DATA)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ``../shared/data`` (the real corpora); skips if it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared corpora not found at {SHARED_DATA}")
    return SHARED_DATA
