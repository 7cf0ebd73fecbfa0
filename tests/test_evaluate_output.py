"""``gan-writer evaluate``: where the JSON goes. A bad ``--json`` is refused before any work, and
no file is ever overwritten (``--json`` or the default beside the checkpoint)."""
import json

import pytest

import gan_writer.commands.evaluate as evaluate_mod
from gan_writer.cli import main


def _no_work(*args, **kwargs):
    raise AssertionError("evaluate did the work before refusing --json")


def _fake_result(ckpt):
    def fake(*args, **kwargs):
        return {"metrics": {"bleu_2": 0.5}, "setup": {"checkpoint": str(ckpt)}, "samples": ["x"]}
    return fake


def test_json_in_a_missing_folder_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(evaluate_mod, "evaluate_checkpoint", _no_work)
    target = tmp_path / "nonexistent" / "x.json"
    assert main(["evaluate", "--ckpt", str(tmp_path / "run"), "--n", "10", "--json", str(target)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err and err.count("\n") == 1
    assert f"gan-writer evaluate: error: --json {target}: the folder {target.parent} does not exist" in err
    assert not target.parent.exists()


def test_existing_json_is_refused_and_left_as_it_is(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(evaluate_mod, "evaluate_checkpoint", _no_work)
    target = tmp_path / "mine.json"
    target.write_text("the user's own notes", encoding="utf-8")
    assert main(["evaluate", "--ckpt", str(tmp_path / "run"), "--json", str(target)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err and err.count("\n") == 1
    assert f"--json {target} already exists; choose another path or remove it" in err
    assert target.read_text(encoding="utf-8") == "the user's own notes"


def test_json_path_is_written_when_new(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(evaluate_mod, "evaluate_checkpoint", _fake_result(tmp_path / "last.ckpt"))
    target = tmp_path / "m.json"
    assert main(["evaluate", "--ckpt", str(tmp_path), "--json", str(target)]) == 0
    assert json.loads(target.read_text(encoding="utf-8"))["metrics"] == {"bleu_2": 0.5}
    assert f"wrote {target}" in capsys.readouterr().out


def test_json_created_meanwhile_is_not_overwritten(tmp_path, monkeypatch, capsys):
    target = tmp_path / "m.json"

    def fake(*args, **kwargs):
        target.write_text("written while evaluating", encoding="utf-8")
        return _fake_result(tmp_path / "last.ckpt")()

    monkeypatch.setattr(evaluate_mod, "evaluate_checkpoint", fake)
    assert main(["evaluate", "--ckpt", str(tmp_path), "--json", str(target)]) == 2
    assert "was created by something else while evaluating" in capsys.readouterr().err
    assert target.read_text(encoding="utf-8") == "written while evaluating"


def test_default_path_never_overwrites_within_one_second(tmp_path, monkeypatch, capsys):
    """The default ``last.metrics.json``, then ``last.metrics.STAMP.json``, then ``-2``, ``-3``:
    runs within the same second (same timestamp) each get their own file."""
    monkeypatch.setattr(evaluate_mod, "evaluate_checkpoint", _fake_result(tmp_path / "last.ckpt"))
    monkeypatch.setattr(evaluate_mod.time, "strftime", lambda fmt, *a: "20250101-120000")
    (tmp_path / "last.ckpt").write_bytes(b"")
    first = tmp_path / "last.metrics.json"
    first.write_text("kept", encoding="utf-8")
    stamped = tmp_path / "last.metrics.20250101-120000.json"
    stamped.write_text("kept too", encoding="utf-8")
    for expected in ("last.metrics.20250101-120000-2.json", "last.metrics.20250101-120000-3.json"):
        assert main(["evaluate", "--ckpt", str(tmp_path)]) == 0
        assert f"wrote {tmp_path / expected}" in capsys.readouterr().out
        assert json.loads((tmp_path / expected).read_text(encoding="utf-8"))["samples"] == ["x"]
    assert first.read_text(encoding="utf-8") == "kept" and stamped.read_text(encoding="utf-8") == "kept too"


def test_default_path_is_beside_the_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(evaluate_mod, "evaluate_checkpoint", _fake_result(tmp_path / "last.ckpt"))
    (tmp_path / "last.ckpt").write_bytes(b"")
    assert main(["evaluate", "--ckpt", str(tmp_path)]) == 0
    assert (tmp_path / "last.metrics.json").is_file()
    assert main(["evaluate", "--ckpt", str(tmp_path)]) == 0
    assert (tmp_path / "last.metrics.json").is_file() and len(list(tmp_path.glob("last.metrics.*.json"))) == 1
    capsys.readouterr()


def _unwritable(monkeypatch, folder):
    """Make creating files in ``folder`` fail as a read-only file system does (tests run as root,
    for whom a chmod-ed folder stays writable)."""
    import errno
    import tempfile

    real = tempfile.NamedTemporaryFile

    def probe(*args, dir=None, **kwargs):
        if dir is not None and str(dir) == str(folder):
            raise OSError(errno.EROFS, "Read-only file system", str(folder))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", probe)


@pytest.mark.parametrize("with_json", [True, False])
def test_an_unwritable_output_folder_is_refused_before_any_work(tmp_path, monkeypatch, capsys, with_json):
    monkeypatch.setattr(evaluate_mod, "evaluate_checkpoint", _no_work)
    (tmp_path / "last.ckpt").write_bytes(b"")
    _unwritable(monkeypatch, tmp_path)
    target = ["--json", str(tmp_path / "m.json")] if with_json else []
    assert main(["evaluate", "--ckpt", str(tmp_path), *target]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert f"cannot write in {tmp_path} (read-only file system); choose another path" in err
    assert (f"--json {tmp_path / 'm.json'}" in err) == with_json and ("pass --json PATH" in err) != with_json
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_the_table_prints_units_and_counts_as_whole_numbers(tmp_path, monkeypatch, capsys):
    def fake(*args, **kwargs):
        return {"metrics": {"bleu_2": 0.51234, "unique_samples": 98.0, "empty_samples": 0.0, "nll_test": 4.25,
                            "form_syllable_err": 1.5},
                "setup": {"checkpoint": str(tmp_path / "last.ckpt")}, "samples": ["x"]}

    monkeypatch.setattr(evaluate_mod, "evaluate_checkpoint", fake)
    (tmp_path / "last.ckpt").write_bytes(b"")
    assert main(["evaluate", "--ckpt", str(tmp_path)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[:6]]
    assert rows == [["metric", "value", "unit"], ["bleu_2", "0.5123", "share", "(0-1)"],
                    ["unique_samples", "98", "samples"], ["empty_samples", "0", "samples"],
                    ["nll_test", "4.2500", "nats/token"], ["form_syllable_err", "1.5000", "syllables/line"]]


@pytest.mark.parametrize("tool", ["evaluate", "compare"])
def test_a_data_dir_that_is_not_a_folder_is_refused(tmp_path, monkeypatch, capsys, tool):
    monkeypatch.setattr(evaluate_mod, "evaluate_checkpoint", _no_work)
    missing = tmp_path / "no_corpora"
    run = ["--ckpt", str(tmp_path / "run")] if tool == "evaluate" else ["--run", f"a={tmp_path / 'run'}"]
    with pytest.raises(SystemExit) as exit_:  # an argument error, as argparse reports one
        main([tool, *run, "--data-dir", str(missing)])  # it was skipped, and another folder used
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--data-dir: {missing} is not a folder" in err


def test_json_that_is_a_folder_and_a_huge_n_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(evaluate_mod, "evaluate_checkpoint", _no_work)
    assert main(["evaluate", "--ckpt", str(tmp_path / "run"), "--json", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"gan-writer evaluate: error: --json {tmp_path} is a folder; give a file path "
                                       f"such as {tmp_path / 'metrics.json'}\n")
    monkeypatch.undo()
    assert main(["evaluate", "--ckpt", str(tmp_path / "missing.ckpt"), "--n", "1000000000"]) == 2
    assert "--n must be at most 100,000 (Self-BLEU scores every sample against all the others" in \
        capsys.readouterr().err


def test_a_folder_of_loose_checkpoints_is_ambiguous(tmp_path):
    from gan_writer.checkpoint import resolve_checkpoint

    (tmp_path / "a.ckpt").write_bytes(b"x")
    assert resolve_checkpoint(tmp_path) == tmp_path / "a.ckpt"  # one: that one
    (tmp_path / "b.ckpt").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"holds 2 .ckpt files and none is best\*.ckpt or last.ckpt: pass one of "
                                         r"them \(a.ckpt, b.ckpt\)"):
        resolve_checkpoint(tmp_path)
    (tmp_path / "last.ckpt").write_bytes(b"x")
    assert resolve_checkpoint(tmp_path) == tmp_path / "last.ckpt"
