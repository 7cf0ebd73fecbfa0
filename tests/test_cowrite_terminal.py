"""``gan-writer cowrite`` driven by a script on standard input (tiny char model checkpoint)."""
import io
import json

import pytest
import torch
from helpers import tiny_gpt2

from gan_writer.checkpoint import payload
from gan_writer.cli import main
from gan_writer.tokenization import char_tokenizer

HANZI = "白日依山尽黄河入海流欲穷千里目更上一层楼月落乌啼霜满天江枫渔火对愁眠，。"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    tok = char_tokenizer([HANZI])
    gen = tiny_gpt2(vocab=len(tok), seed=0, n_positions=32)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    torch.save({"state_dict": {f"generator.{k}": v for k, v in gen.state_dict().items()},
                "gan_writer": payload(gen, tok, max_length=25, metric_tokenization="char")}, path)
    return str(path)


def run(ckpt, session, script, monkeypatch, capsys, status=0):
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    assert main(["cowrite", "--ckpt", ckpt, "--session", str(session), "--form", "wujue", "--seed", "2"]) == status
    captured = capsys.readouterr()
    return captured.out if status == 0 else (captured.out, captured.err)


def test_scripted_wujue(ckpt, tmp_path, monkeypatch, capsys):
    session = tmp_path / "s.json"
    script = "\n".join(["白日依山尽", ":more 3", ":pick 2", ":next", ":undo", ":redo", ":more 2", ":pick 1",
                        ":rewrite 2-2 月", ":pick 9", ":pick 1", ":pick 1", ":bogus", ":save",
                        f":export {tmp_path / 'poem.md'}", f":export {tmp_path / 'poem.md'}", ":quit", "never read"])
    out, err = run(ckpt, session, script, monkeypatch, capsys, status=2)  # a scripted command failed: exit 2
    assert out.count("  [1] ") == 3 and "  [3] " in out and "平仄" in out and "safety: ok" in out
    # the script goes on after a failed command; each error is on stderr with its line number
    assert err.splitlines() == [
        "gan-writer cowrite: line 10: error: candidate 9 does not exist; choose 1 to 3",
        "gan-writer cowrite: line 12: error: there are no candidates to choose from; ask for alternatives first",
        "gan-writer cowrite: line 13: error: unknown command :bogus; :help lists them",
        f"gan-writer cowrite: line 16: error: {tmp_path / 'poem.md'} exists; choose another name (exports never overwrite)",
    ] and "error:" not in out and "never read" not in out
    data = json.loads(session.read_text())
    spans = data["states"][data["pos"]]["spans"]
    assert [s["author"] for s in spans] == ["writer", "model", "model", "model"]
    assert [len(s["text"]) for s in spans] == [6, 6, 6, 6] and spans[0]["text"] == "白日依山尽，"
    ops = [r["op"] for r in data["log"]]
    assert ops == ["write", "alternatives", "choose", "continue", "undo", "redo", "alternatives", "choose",
                   "rewrite", "choose"]
    md = (tmp_path / "poem.md").read_text()
    assert md.startswith(spans[0]["text"] + "  \n") and "3 of 4 spans written by the model" in md


def test_reopen_continues_the_session_and_refuses_a_corrupted_file(ckpt, tmp_path, monkeypatch, capsys):
    session = tmp_path / "s.json"
    run(ckpt, session, "白日依山尽\n:next\n", monkeypatch, capsys)  # ends at end of input
    out = run(ckpt, session, ":undo\n:show\n:quit\n", monkeypatch, capsys)
    assert out.rstrip().endswith("\n  1  白日依山尽，")  # :show after :undo: only the writer's line
    assert [r["op"] for r in json.loads(session.read_text())["log"]] == ["write", "continue", "undo"]
    session.write_text("{broken")
    monkeypatch.setattr("sys.stdin", io.StringIO(":quit\n"))
    assert main(["cowrite", "--ckpt", ckpt, "--session", str(session)]) == 2
    assert "not a gan-writer session" in capsys.readouterr().err and session.read_text() == "{broken"


@pytest.mark.parametrize("option, value, saved", [("--seed", "3", "2"), ("--kind", "story", "'poem'"),
                                                   ("--form", "qijue", "'wujue'"), ("--temperature", "0.5", "1.0")])
def test_reopening_with_a_different_new_session_option_is_refused(ckpt, tmp_path, monkeypatch, capsys,
                                                                  option, value, saved):
    session = tmp_path / "s.json"
    run(ckpt, session, "白日依山尽\n:next\n", monkeypatch, capsys)  # saved: kind poem, form wujue, seed 2
    before = session.read_text()
    monkeypatch.setattr("sys.stdin", io.StringIO(":next\n:quit\n"))
    assert main(["cowrite", "--ckpt", ckpt, "--session", str(session), option, value]) == 2
    out, err = capsys.readouterr()
    key = option[2:]
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert (f"--session {session} exists and was written with {key} {saved}; {option} " in err
            and f"drop {option} to continue it" in err)
    assert session.read_text() == before  # nothing was run on it
    # without the option (or with the saved value) it continues
    monkeypatch.setattr("sys.stdin", io.StringIO(":quit\n"))
    assert main(["cowrite", "--ckpt", ckpt, "--session", str(session), "--seed", "2"]) == 0


def test_reopening_with_the_creating_command_works_after_a_temperature_change(ckpt, tmp_path, monkeypatch, capsys):
    session = tmp_path / "s.json"
    monkeypatch.setattr("sys.stdin", io.StringIO("白日依山尽\n:temp 0.8\n:next\n"))
    create = ["cowrite", "--ckpt", ckpt, "--session", str(session), "--temperature", "0.5", "--title", "江"]
    assert main(create) == 0
    data = json.loads(session.read_text())
    assert data["states"][0]["temperature"] == 0.5 and data["states"][data["pos"]]["temperature"] == 0.8
    monkeypatch.setattr("sys.stdin", io.StringIO(":quit\n"))
    assert main(create) == 0  # the creating command again: the saved creation values match
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(":quit\n"))
    assert main([*create[:5], "--title", "河"]) == 2
    assert "written with title '江'; --title '河' sets a new session only" in capsys.readouterr().err


@pytest.mark.parametrize("tool", ["cowrite", "studio"])
def test_session_in_a_missing_folder_is_refused_up_front(ckpt, tmp_path, monkeypatch, capsys, tool):
    monkeypatch.setattr("sys.stdin", io.StringIO(":quit\n"))
    session = tmp_path / "nonexistent" / "dir" / "s.json"
    port = ["--port", "0"] if tool == "studio" else []
    assert main([tool, "--ckpt", ckpt, "--session", str(session), *port]) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in err and err.count("\n") == 1 and ".tmp" not in err
    assert f"gan-writer {tool}: error: --session {session}: the folder {session.parent} does not exist" in err
    assert not (tmp_path / "nonexistent").exists()


def test_studio_port_out_of_range_is_refused(ckpt, capsys):
    for port in ("99999", "-1"):
        assert main(["studio", "--ckpt", ckpt, "--port", port]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.count("\n") == 1
        assert f"gan-writer studio: error: --port {port} is not a port number: choose one in 0..65535" in err


def test_studio_address_in_use_names_host_and_port(ckpt, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["studio", "--ckpt", ckpt, "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert f"gan-writer studio: error: cannot serve on 127.0.0.1:{port}: the address is already in use" in err


@pytest.mark.parametrize("temperature", ["0", "-1", "nan"])
def test_temperature_is_checked_before_the_session_starts(ckpt, tmp_path, monkeypatch, capsys, temperature):
    monkeypatch.setattr("sys.stdin", io.StringIO("白日依山尽\n:next\n:quit\n"))
    session = tmp_path / "s.json"
    assert main(["cowrite", "--ckpt", ckpt, "--session", str(session), "--temperature", temperature]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "--temperature" in err and temperature in err
    assert not session.exists()  # refused before the session was created


def test_temp_names_the_value_typed(ckpt, tmp_path, monkeypatch, capsys):
    """`:temp nan` / `inf` / a word used to say "got -1.0"; `1e9` was refused though finite."""
    out, err = run(ckpt, tmp_path / "s.json", ":temp nan\n:temp inf\n:temp warm\n:temp 0\n:temp 1e9\n:temp 0.7\n",
                   monkeypatch, capsys, status=2)
    assert err.splitlines() == [
        "gan-writer cowrite: line 1: error: temperature must be a finite number > 0, got nan",
        "gan-writer cowrite: line 2: error: temperature must be a finite number > 0, got inf",
        "gan-writer cowrite: line 3: error: :temp needs a number > 0, e.g. :temp 0.8; got 'warm'",
        "gan-writer cowrite: line 4: error: temperature must be a finite number > 0, got 0.0",
    ]
    assert "temperature 1000000000.0" in out and "temperature 0.7" in out
    assert json.loads((tmp_path / "s.json").read_text())["states"][-1]["temperature"] == 0.7


def test_an_english_checkpoint_gets_an_english_form(tmp_path, monkeypatch, capsys):
    """It used to default to wujue, append a Chinese comma to the first line, fail at :next, and
    keep the session stuck with that form."""
    from gan_writer.tokenization import word_tokenizer

    tok = word_tokenizer(["the sea is wide and the sky\nis grey above me\nthe day is long and free\nwe sail away"])
    gen = tiny_gpt2(vocab=len(tok), seed=0, n_positions=48)
    ckpt = tmp_path / "en.ckpt"
    torch.save({"state_dict": {f"generator.{k}": v for k, v in gen.state_dict().items()},
                "gan_writer": payload(gen, tok, max_length=40, metric_tokenization="word")}, ckpt)
    session = tmp_path / "s.json"
    monkeypatch.setattr("sys.stdin", io.StringIO("the sea is wide\n:quit\n"))
    assert main(["cowrite", "--ckpt", str(ckpt), "--session", str(session)]) == 0
    captured = capsys.readouterr()
    assert "note: the checkpoint cannot write Chinese verse: a quatrain session" in captured.err
    data = json.loads(session.read_text())
    assert data["form"] == "quatrain" and "，" not in json.dumps(data, ensure_ascii=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(":quit\n"))
    assert main(["cowrite", "--ckpt", str(ckpt), "--session", str(tmp_path / "t.json"), "--form", "wujue"]) == 2
    assert "--form wujue: the checkpoint's tokenizer has no token for '，'" in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()


def test_infill_ban_and_steer_say_what_is_wrong(ckpt, tmp_path, monkeypatch, capsys):
    """`:infill 0` said "span range 0--1"; `:ban` of a word the model cannot write was silently
    kept; `:steer` towards a banned word was accepted."""
    script = "白日依山尽\n:infill 0\n:infill 9\n:ban 鑫\n:ban 月\n:steer 月\n:steer 鑫\n:steer 江\n:ban\n:steer 月\n"
    out, err = run(ckpt, tmp_path / "s.json", script, monkeypatch, capsys, status=2)
    assert err.splitlines() == [
        "gan-writer cowrite: line 2: error: cannot insert before span 0: choose 1 to 2 "
        "(the document has 1 span; 2 adds at the end)",
        "gan-writer cowrite: line 3: error: cannot insert before span 9: choose 1 to 2 "
        "(the document has 1 span; 2 adds at the end)",
        "gan-writer cowrite: line 4: error: :ban: the model's vocabulary has no '鑫', so it never writes it; "
        "check the spelling or choose another word",
        "gan-writer cowrite: line 6: error: :steer: '月' is banned (:ban); `:ban` with no words clears the banned list",
        "gan-writer cowrite: line 7: error: :steer: the model's vocabulary has no '鑫', so it never writes it; "
        "check the spelling or choose another word",
    ]
    assert "banned: 月" in out and "steering towards: 江" in out and "banned: (nothing)" in out
    assert "steering towards: 月" in out
