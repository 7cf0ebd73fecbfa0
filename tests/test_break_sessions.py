"""Session files with fields of the wrong type, nested too deeply, or not files are refused in one
SessionError line and left untouched (were TypeError / RecursionError, or opened and then rewritten)."""
import copy
import json

import pytest

from cowrite_stub import StubGenerator
from gan_writer.cowrite.session import Session, SessionError


def _good():
    s = Session(StubGenerator(), "poem", "wujue")
    s.write("白日依山尽")
    s.branch(2)
    return s.to_dict()


def _last(key, value):
    return lambda g: g["states"][-1].__setitem__(key, value)


@pytest.mark.parametrize("edit,message", [
    (lambda g: g.__setitem__("form", "nope"), "not a known form"),
    (lambda g: g.__setitem__("seed", 10**30), "seed"),
    (_last("steer", 5), "'steer' is not a list"),
    (_last("steer", "abc"), "'steer' is not a list"),
    (_last("ban", {"a": 1}), "'ban' is not a list"),
    (_last("temperature", "hot"), "temperature"),
    (_last("temperature", float("nan")), "temperature"),
    (_last("candidates", "x"), "'candidates'"),
    (_last("branch", 3), "'branch'"),
    (_last("target", "ab"), "target"),
])
def test_wrong_types_refused_and_left_untouched(tmp_path, edit, message):
    data = copy.deepcopy(_good())
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    before = path.read_bytes()
    with pytest.raises(SessionError, match=message) as err:
        Session.open(path, StubGenerator())
    assert "left as it is" in str(err.value) and "\n" not in str(err.value)
    assert path.read_bytes() == before


def test_deep_nesting_and_folder_refused(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(SessionError, match="nested too deeply"):
        Session.open(path, StubGenerator())
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(SessionError, match="cannot read"):
        Session.open(tmp_path / "dir.json", StubGenerator())


def test_good_session_round_trips(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(_good()))
    assert Session.open(path, StubGenerator()).text


def test_terminal_export_to_a_missing_folder_is_an_error_line(tmp_path):
    import io

    from gan_writer.cowrite.terminal import loop

    s = Session(StubGenerator(), "poem", "wujue")
    s.write("白日依山尽")
    out, err = io.StringIO(), io.StringIO()
    cmds = f":export {tmp_path}/no/such/dir/p.md\n:export {tmp_path}\n:export {tmp_path}/ok.md\n"
    assert loop(s, io.StringIO(cmds), out, stderr=err) == 2  # a scripted command failed
    errors = err.getvalue().splitlines()
    assert len(errors) == 2 and errors[0].startswith("gan-writer cowrite: line 1: error: ") and "cannot export to" in errors[0]
    assert errors[1].startswith("gan-writer cowrite: line 2: error: ") and "exists" in errors[1]
    assert "exported to" in out.getvalue() and "error" not in out.getvalue()
    assert (tmp_path / "ok.md").read_text(encoding="utf-8").startswith("白日依山尽")
