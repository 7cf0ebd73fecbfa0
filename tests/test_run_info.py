"""RunConfigCallback.on_exception: a fit that failed before its first step (a validate / test
before its first batch) takes back the folder it made, and only that (gan_writer/callbacks/run_info.py)."""
import os
import types

import pytest
from lightning.pytorch.utilities.exceptions import SIGTERMException

from gan_writer.callbacks.run_info import RunConfigCallback


def made_folder(tmp_path, extra=None, subfolder=False):
    folder = tmp_path / "version_0"
    folder.mkdir()
    if subfolder:
        (folder / "checkpoints").mkdir()
    files = [folder / "config.yaml", folder / "run_info.json"]
    for f in files:
        f.write_text("x")
    if extra:
        (folder / extra).write_text("y")
    cb = RunConfigCallback.__new__(RunConfigCallback)  # the hook reads only what setup recorded
    cb._made = (str(folder), [str(f) for f in files])
    return cb, folder


@pytest.mark.parametrize("step, exception, extra, removed", [
    (0, ValueError("cannot resume"), None, True),
    (0, ValueError("cannot resume"), f"events.out.tfevents.1.vm.{os.getpid()}.1", True),  # this process's logger
    (0, ValueError("cannot resume"), f"events.out.tfevents.1.vm.{os.getpid() + 1}.1", False),  # another process's
    (0, ValueError("cannot resume"), "notes.txt", False),  # someone else's file: all kept
    (3, ValueError("loss is nan"), None, False),  # training steps were taken
    (0, KeyboardInterrupt(), None, False),  # an interruption is not a failure
    (0, SIGTERMException(), None, False),
])
def test_on_exception_removes_only_a_folder_of_its_own_files(tmp_path, step, exception, extra, removed):
    cb, folder = made_folder(tmp_path, extra)
    cb.on_exception(types.SimpleNamespace(global_step=step), None, exception)
    assert folder.exists() is not removed
    if not removed:
        assert (folder / "config.yaml").read_text() == "x" and (folder / "run_info.json").read_text() == "x"


@pytest.mark.parametrize("stage, ready, removed", [("validate", 0, True), ("validate", 1, False), ("test", 0, True),
                                                   ("test", 2, False)])
def test_an_evaluation_keeps_its_folder_once_a_batch_began(tmp_path, stage, ready, removed):
    cb, folder = made_folder(tmp_path)
    cb._stage = stage
    progress = types.SimpleNamespace(batch_progress=types.SimpleNamespace(total=types.SimpleNamespace(ready=ready)))
    cb.on_exception(types.SimpleNamespace(global_step=0, **{f"{stage}_loop": progress}), None, ValueError("x"))
    assert folder.exists() is not removed


def test_on_exception_keeps_a_folder_this_process_did_not_make(tmp_path):
    cb, folder = made_folder(tmp_path)
    cb._made = None  # setup found the folder already there
    cb.on_exception(types.SimpleNamespace(global_step=0), None, ValueError("x"))
    assert (folder / "config.yaml").is_file()


def test_on_exception_keeps_a_folder_with_a_checkpoints_folder(tmp_path):
    cb, folder = made_folder(tmp_path, subfolder=True)
    cb.on_exception(types.SimpleNamespace(global_step=0), None, ValueError("x"))
    assert (folder / "config.yaml").is_file() and (folder / "checkpoints").is_dir()


def test_a_folder_counts_as_this_processs_only_if_absent_or_holding_its_event_file(tmp_path):
    """At setup: an empty folder may be one the user made (kept); an event file counts as this
    process's only by its pid field, not by the pid appearing elsewhere in the host name."""
    from gan_writer.callbacks.run_info import _made_by_this_process

    pid = os.getpid()
    assert _made_by_this_process(str(tmp_path / "new"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not _made_by_this_process(str(empty))
    (empty / f"events.out.tfevents.1796626698.node.{pid}.lab.4242.0").write_text("")  # another pid, ours in the host
    assert not _made_by_this_process(str(empty))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / f"events.out.tfevents.1796626698.vm.{pid}.0").write_text("")
    assert _made_by_this_process(str(mine))


@pytest.mark.parametrize("precision, hint", [("16-true", True), ("bf16-mixed", False), ("32-true", False)])
def test_a_nan_loss_under_pure_float16_names_adams_eps(precision, hint):
    """Pure float16 (16-true): Adam's eps 1e-8 is 0 there, so a weight with a zero gradient
    becomes 0/0 = NaN on the first step; the stop message says so instead of only "lower the lr"."""
    import torch

    from gan_writer.resume import NonFiniteError, check_loss

    assert torch.tensor(1e-8, dtype=torch.float16).item() == 0.0
    module = types.SimpleNamespace(current_epoch=0, global_step=1, _trainer=types.SimpleNamespace(precision=precision))
    with pytest.raises(NonFiniteError, match="Lower the learning rate") as err:
        check_loss(module, torch.tensor(float("nan")))
    assert ("eps (1e-8) is 0: use bf16-mixed" in str(err.value)) is hint
    check_loss(module, torch.tensor(1.0))  # finite: no error
