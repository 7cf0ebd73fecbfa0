"""The four analysis notebooks run top to bottom (nbclient, kernel ``python3``) on the tiny
runs and the compare output that tests/test_compare.py builds, and are stored without outputs."""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from test_compare import build_shared  # the runs and compare output, built once per session

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["01_corpus_exploration.ipynb", "02_training_curves.ipynb", "03_quality_diversity.ipynb",
         "04_sample_review.ipynb"]


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(name, tmp_path_factory, shared_data, monkeypatch, tmp_path):
    shared = build_shared(tmp_path_factory)
    import os

    # the kernel inherits this environment; cwd is an empty folder so no default path is used
    monkeypatch.setenv("GAN_WRITER_DATA", str(shared_data))
    monkeypatch.setenv("GAN_WRITER_CORPUS", "shi")
    monkeypatch.setenv("GAN_WRITER_RUNS", os.pathsep.join([shared["mle"], shared["seqgan"]]))
    monkeypatch.setenv("GAN_WRITER_COMPARE_CSV", str(Path(shared["out"]) / "results.csv"))
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    kinds = {k for o in outputs for k in o.get("data", {})}
    assert ("text/html" if name.startswith("04") else "image/png") in kinds
