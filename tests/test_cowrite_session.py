"""Co-writing sessions with a deterministic stub generator: history, undo/redo, branching,
replay, autosave/reload, corrupted files, exports."""
import json

import pytest
from cowrite_stub import StubGenerator

from gan_writer.cowrite.session import FORMAT, Session, SessionError


def test_history_records_authors_and_seeds():
    s = Session(StubGenerator(), "poem", "wujue", seed=10)
    s.write("白日依山尽")
    cands = s.alternatives(3)
    assert [c["score"] for c in cands] == [1.0, 0.9, 0.8]
    s.choose(1)
    assert s.spans[0] == {"text": "白日依山尽，", "author": "writer", "seed": None, "op": "write"}
    assert s.spans[1]["author"] == "model" and s.spans[1]["seed"] == 11
    assert s.spans[1]["text"] == cands[1]["text"] + "。"  # even line gets its mark
    assert s.text == "白日依山尽，\n" + cands[1]["text"] + "。"
    assert [r["op"] for r in s.log] == ["write", "alternatives", "choose"]
    assert s.log[1]["seed"] == 11 and s.candidates == []
    with pytest.raises(SessionError, match="no candidates"):
        s.choose(0)


def test_undo_redo_and_truncation():
    s = Session(StubGenerator(), "poem", "wujue")
    s.write("白日依山尽")
    s.alternatives(2)
    s.choose(0)
    after = s.text
    s.undo()
    assert len(s.candidates) == 2 and len(s.spans) == 1
    s.undo()
    assert s.candidates == [] and s.text == "白日依山尽，"
    s.redo()
    s.redo()
    assert s.text == after
    with pytest.raises(SessionError, match="nothing to redo"):
        s.redo()
    s.undo()
    s.choose(1)  # a new operation drops the redo branch
    assert s.text != after
    with pytest.raises(SessionError, match="nothing to redo"):
        s.redo()
    for _ in range(len(s.states) - 1):
        s.undo()
    assert s.text == ""
    with pytest.raises(SessionError, match="nothing to undo"):
        s.undo()


def test_rewrite_infill_steer_ban():
    gen = StubGenerator()
    s = Session(gen, "poem", "wujue")
    s.write("白日依山尽")
    s.continue_()
    s.continue_()
    old = [x["text"] for x in s.spans]
    cands = s.rewrite(1, 2, keywords=["月"])
    assert gen.requests[-1].prefix == old[0] and gen.requests[-1].suffix == old[2] and gen.requests[-1].units == 1
    assert cands[0]["text"].startswith("月")
    s.choose(0)
    assert [x["text"] for x in s.spans][0::2] == old[0::2] and s.spans[1]["text"].startswith("月")
    s.infill(1)
    s.choose(2)
    assert len(s.spans) == 4 and s.spans[1]["op"] == "choose"
    s.steer(["雪"])
    s.ban(["天", "江"])
    s.alternatives(3)
    assert gen.requests[-1].keywords == ("雪",) and gen.requests[-1].bans == ("天", "江")
    with pytest.raises(SessionError, match="outside the document"):
        s.rewrite(2, 9)


def test_branching_endings_as_siblings():
    s = Session(StubGenerator(), "story")
    s.write("Once there was a lighthouse.")
    s.branch(3)
    br = s.state["branch"]
    assert br["fork"] == 1 and len(br["siblings"]) == 3 and br["active"] == 0
    first = s.text
    s.write("Edited ending.")
    edited = s.text
    s.switch(2)
    assert s.text == "Once there was a lighthouse." + br["siblings"][2][0]["text"]
    s.switch(0)
    assert s.text == edited  # the edited first ending was kept as its sibling
    assert first in edited
    with pytest.raises(SessionError, match="ending 5 does not exist"):
        s.switch(4)


def test_replay_gives_the_same_session():
    s = Session(StubGenerator(), "poem", "wujue", seed=3)
    s.write("白日依山尽")
    s.alternatives(3)
    s.choose(2)
    s.steer(["月"])
    s.continue_()
    s.undo()
    s.set_temperature(0.7)
    s.rewrite(1, 2)
    s.choose(0)
    s.branch(2)
    s.switch(1)
    r = s.replay(StubGenerator())
    assert r.states == s.states and r.log == s.log and r.pos == s.pos and r.text == s.text


def test_autosave_after_every_operation_and_reload(tmp_path):
    path = tmp_path / "poem.json"
    s = Session(StubGenerator(), "poem", "wujue", path=path)
    assert json.loads(path.read_text())["format"] == FORMAT
    s.write("白日依山尽")
    assert json.loads(path.read_text())["states"][-1]["spans"][0]["text"] == "白日依山尽，"
    s.alternatives(2)
    s.choose(0)
    s.undo()
    saved = json.loads(path.read_text())
    assert saved["pos"] == 2 and saved["log"][-1]["op"] == "undo"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    back = Session.open(path, StubGenerator())
    assert back.states == s.states and back.pos == s.pos and back.text == s.text
    back.redo()
    assert back.text == json.loads(path.read_text())["states"][3]["spans"][-1]["text"].join(["白日依山尽，\n", ""])
    assert Session.open(path, StubGenerator()).text == back.text


@pytest.mark.parametrize("content,message", [
    ('{"format": "gan_writer.cowrite.session/1", "kind": "poem"', "invalid JSON"),
    ('[1, 2]', "top level is not an object"),
    ('{"format": "other"}', "format is 'other'"),
    ('{"format": "gan_writer.cowrite.session/1", "kind": "poem", "form": null, "seed": 0, "states": '
     '[{"spans": [{"text": "x", "author": "robot"}], "candidates": [], "target": null, "steer": [], "ban": [],'
     ' "branch": null, "temperature": 1.0}], "pos": 0, "log": []}', "span that is not"),
])
def test_corrupted_file_is_refused_and_left_untouched(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SessionError, match=message) as err:
        Session.open(path, StubGenerator())
    assert str(path) in str(err.value) and "left as it is" in str(err.value)
    with pytest.raises(SessionError, match="already exists"):
        Session(StubGenerator(), path=path)
    with pytest.raises(SessionError):
        Session.open_or_create(path, StubGenerator())
    assert path.read_text() == content


def test_exports():
    s = Session(StubGenerator(), "script", title="Night")
    s.write("ANNA: Where is the boat?")
    s.write("The lamp goes out.")
    s.continue_()
    fountain = s.export("fountain")
    assert fountain.startswith("Title: Night\n") and "\nANNA\nWhere is the boat?\n\nThe lamp goes out.\n" in fountain
    assert json.loads(s.export("json"))["spans"][2]["author"] == "model"
    md = s.export("markdown")
    assert md.startswith("# Night\n\n") and "1 of 3 spans written by the model" in md
    p = Session(StubGenerator(), "poem", "wujue")
    p.write("白日依山尽")
    assert p.export("text") == "白日依山尽，\n"
    with pytest.raises(ValueError, match="Fountain is for scripts"):
        p.export("fountain")


def test_a_crash_while_saving_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "s.json"
    s = Session(StubGenerator(), "poem", "wujue", path=path)
    s.write("白日依山尽")
    before = path.read_text()

    def crash(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr("gan_writer.cowrite.session.json.dump", crash)
    with pytest.raises(KeyboardInterrupt):
        s.continue_()
    assert path.read_text() == before and list(tmp_path.iterdir()) == [path]
    assert Session.open(path, StubGenerator()).text == "白日依山尽，"


def test_story_passages_are_joined_with_a_space_where_words_meet():
    from gan_writer.cowrite.session import join_passages

    # a word-level tokenizer's passages have no leading space: they were glued ("nightconcealed")
    assert join_passages(["the king rode out at night", "concealed prepares"]) == "the king rode out at night concealed prepares"
    assert join_passages(["Once there was", " a lighthouse", ", and", "… then", "it fell."]) == \
        "Once there was a lighthouse, and… then it fell."
    assert join_passages(["he said\n", "“no”", ""]) == "he said\n“no”"
    assert join_passages(["白日依山尽，", "黄河入海流。", "Li Bai"]) == "白日依山尽，黄河入海流。Li Bai"
    s = Session(StubGenerator(), "story")
    s.write("the king rode")
    s.write("out at night")
    s.continue_()  # the stub's passages start with a space: kept as they are
    assert s.text == "the king rode out at night" + s.spans[-1]["text"] and s.spans[-1]["text"].startswith(" s")
    assert s.export("text") == s.text + "\n"
    assert s.generator.requests[-1].prefix == "the king rode out at night"  # the model is prompted with the spaced text
