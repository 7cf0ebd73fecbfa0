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


@pytest.mark.parametrize("name", NAMES[1:])
def test_notebook_defaults_find_the_repositorys_checkpoints_from_notebooks(name, tmp_path_factory, shared_data,
                                                                          monkeypatch, tmp_path):
    """Jupyter starts a notebook's kernel in notebooks/: with no GAN_WRITER_RUNS / _COMPARE_CSV set, the
    defaults are the repository's checkpoints/ (its parent), not notebooks/checkpoints."""
    import shutil

    shared = build_shared(tmp_path_factory)
    runs = tmp_path / "repo" / "checkpoints"
    shutil.copytree(shared["mle"], runs / "poetry_zh" / "mle")
    shutil.copytree(shared["out"], runs / "compare" / "mine")
    (tmp_path / "repo" / "notebooks").mkdir()
    for var in ("GAN_WRITER_RUNS", "GAN_WRITER_COMPARE_CSV", "GAN_WRITER_COMPARE_DIR", "GAN_WRITER_CHECKPOINTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GAN_WRITER_DATA", str(shared_data))
    monkeypatch.setenv("GAN_WRITER_CORPUS", "shi")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path / "repo" / "notebooks")}}).execute()
    first = "".join(o.get("text", "") for o in nb.cells[1].outputs if o.output_type == "stream")
    assert str(runs) in first  # it printed what it read: a run or the compare folder under repo/checkpoints


def test_no_compare_output_names_what_to_set(tmp_path, monkeypatch):
    from gan_writer.analysis.events import checkpoints_dir, newest_compare_file

    monkeypatch.delenv("GAN_WRITER_CHECKPOINTS", raising=False)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "notebooks").mkdir()
    assert checkpoints_dir(tmp_path / "notebooks") == tmp_path / "checkpoints"
    with pytest.raises(FileNotFoundError, match="GAN_WRITER_COMPARE_CSV"):
        newest_compare_file(root=tmp_path / "checkpoints")
    monkeypatch.setenv("GAN_WRITER_CHECKPOINTS", str(tmp_path / "elsewhere"))
    assert checkpoints_dir(tmp_path / "notebooks") == tmp_path / "elsewhere"
