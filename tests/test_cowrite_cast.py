"""Script sessions with a logline and a cast (``cowrite --characters/--logline``): every model
line is ``NAME: speech`` by a listed character chosen by Dramatron's turn rule, the logline and
cast sit in every prompt above the script, and they survive the session file and exports."""
import io
import json

import pytest
import torch
from helpers import tiny_gpt2

from gan_writer.checkpoint import Artifacts, payload
from gan_writer.cli import main
from gan_writer.cowrite import generator as G
from gan_writer.cowrite.generator import ModelGenerator
from gan_writer.cowrite.server import Studio
from gan_writer.cowrite.session import Session, SessionError
from gan_writer.tokenization import word_tokenizer
from gan_writer.writing.safety import SafetyFilter
from gan_writer.writing.script import (cast_header, check_characters, likeliest_speaker, speaker_of,
                                       speaker_options)

TEXT = ("once upon a time a fox met a crow in the wood . the crow had cheese and the fox was hungry . "
        "anna : where is the boat ? ben : by the river , under the old tree . cat : the night was cold \n")
CAST = [("anna", "a fox"), ("ben", "a crow"), ("cat", "")]
LOGLINE = "a fox wants the cheese of a crow"


@pytest.fixture(scope="module")
def art():
    tok = word_tokenizer([TEXT])
    return Artifacts(tiny_gpt2(vocab=len(tok), seed=0, n_positions=64).eval(), tok, {"metric_tokenization": "word"})


def model(art):
    return ModelGenerator(art, passage_tokens=8, safety_filter=SafetyFilter(classifier=False))


def test_turn_rule_speaker_of_and_header():
    names = ["anna", "ben", "cat"]
    assert speaker_options(names, None, {}) == names
    assert speaker_options(names, "anna", {"anna": 1}) == ["ben", "cat"]
    assert speaker_options(names, "ben", {"anna": 1, "ben": 1}) == ["cat"]  # the least heard
    assert speaker_options(names, "anna", {}, avoid="ben") == ["cat"]  # an insert: not the next speaker either
    assert speaker_options(["anna", "ben"], "anna", {}, avoid="ben") == ["ben"]  # two: only the previous one is out
    assert speaker_options(["anna"], "anna", {"anna": 3}) == ["anna"]  # a monologue
    assert speaker_of("ANNA: hello", names) == "anna" and speaker_of(" Ben :x", names) == "ben"
    assert speaker_of("dan: hello", names) is None and speaker_of("anna hello", names) is None
    assert cast_header("", LOGLINE, CAST) == f"{LOGLINE}\nanna: a fox\nben: a crow\ncat: \n"
    assert cast_header("T", "", CAST[:1]) == "T\nanna: a fox\n"


@pytest.mark.parametrize("cast, message", [
    ([("anna", ""), ("ANNA", "")], "names 'ANNA' twice"),
    ([("an:na", "")], "without ':'"),
    ([(" anna", "")], "surrounding spaces"),
    ([("a" * 41, "")], "1 to 40 characters"),
    ([("", "x")], "1 to 40 characters"),
])
def test_check_characters_refuses_bad_names(cast, message):
    with pytest.raises(ValueError, match=message):
        check_characters(cast)


def test_likeliest_speaker_is_the_argmax_of_the_names_log_probs(art):
    tok, gen = art.tokenizer, art.generator
    context = torch.tensor(tok("the crow had cheese .", add_special_tokens=False)["input_ids"])
    scores = {}
    for name in ("anna", "ben", "cat"):
        tail = torch.tensor(tok(f"\n{name}:", add_special_tokens=False)["input_ids"])
        full = torch.cat([context, tail])[None]
        with torch.no_grad():
            scores[name] = float(gen.log_probs(full)[0, context.numel():].sum())
    assert len(set(scores.values())) == 3
    assert likeliest_speaker(gen, tok, context, ["anna", "ben", "cat"]) == max(scores, key=scores.get)
    worst = min(scores, key=scores.get)
    assert likeliest_speaker(gen, tok, context, [worst]) == worst


def test_model_lines_are_spoken_by_the_cast_in_turn_and_the_prompt_holds_the_header(art, monkeypatch):
    prompts = []
    real = G.constrained_sample

    def spy(gen, n, steps, procs, prompt, **kw):
        prompts.append(art.tokenizer.decode(prompt.tolist()))
        return real(gen, n, steps, procs, prompt, **kw)

    monkeypatch.setattr(G, "constrained_sample", spy)
    s = Session(model(art), "script", logline=LOGLINE, characters=CAST, title="the cheese")
    s.write("anna: where is the boat ?")
    for _ in range(5):
        s.continue_()
    speakers = [speaker_of(sp["text"], ["anna", "ben", "cat"]) for sp in s.spans]
    assert None not in speakers and all(sp["text"].split(":", 1)[1].strip() for sp in s.spans)
    assert all(a != b for a, b in zip(speakers, speakers[1:]))  # never the same speaker twice in a row
    assert set(speakers[:3]) == {"anna", "ben", "cat"}  # the least heard speak first
    # the prompt: title, logline, cast, the script so far, then the chosen speaker's cue
    tok = art.tokenizer
    expected = [i for i in tok(f"the cheese\n{LOGLINE}\nanna: a fox\nben: a crow\ncat: \nanna: where is the boat ?\n"
                               f"{speakers[1]}:", add_special_tokens=False)["input_ids"] if i != tok.unk_token_id]
    assert prompts[0] == tok.decode(expected) and prompts[0].endswith(f"cat :\nanna : where is the boat ?\n{speakers[1]} :")
    # an insert between two lines is spoken by neither neighbour
    cands = s.infill(2, k=3)
    around = {speakers[1], speakers[2]}
    assert len({speaker_of(c["text"], ["anna", "ben", "cat"]) for c in cands}) == 1
    assert speaker_of(cands[0]["text"], ["anna", "ben", "cat"]) not in around


def test_a_session_without_a_cast_draws_as_before(art, monkeypatch):
    prompts = []
    real = G.constrained_sample
    monkeypatch.setattr(G, "constrained_sample",
                        lambda gen, n, steps, procs, prompt, **kw: prompts.append(prompt.tolist()) or real(
                            gen, n, steps, procs, prompt, **kw))
    s = Session(model(art), "script", title="the cheese")
    s.write("anna: where is the boat ?")
    s.continue_()
    assert prompts == [art.tokenizer("anna: where is the boat ?", add_special_tokens=False)["input_ids"]]


def test_cast_survives_the_file_replay_exports_and_the_studio_state(art, tmp_path):
    path = tmp_path / "s.json"
    s = Session(model(art), "script", path=path, logline=LOGLINE, characters=CAST, title="the cheese")
    s.write("anna: where is the boat ?")
    s.continue_()
    s.continue_()
    data = json.loads(path.read_text())
    assert data["logline"] == LOGLINE and data["characters"] == [list(c) for c in CAST]
    back = Session.open(path, model(art))
    assert (back.logline, back.characters) == (LOGLINE, CAST) and back.header == s.header
    assert back.replay().text == s.text
    fountain = s.export("fountain")
    assert fountain.startswith(f"Title: the cheese\nCredit: written with gan-writer\nNotes: {LOGLINE}\n\n"
                               "[[Characters: ANNA - a fox; BEN - a crow; CAT]]\n\nANNA\nwhere is the boat?\n")
    assert fountain.count("\nCAT\n") + fountain.count("\nBEN\n") == 2  # both model lines are cues
    md = s.export("markdown")
    assert md.startswith(f"# the cheese\n\n*{LOGLINE}*\n\n- **anna**: a fox\n- **ben**: a crow\n- **cat**\n\n")
    st = Studio(s).state()
    assert st["logline"] == LOGLINE and st["characters"][1] == {"name": "ben", "description": "a crow"}


def test_cast_is_refused_outside_scripts_and_bad_files_are_left_alone(art, tmp_path):
    with pytest.raises(SessionError, match="for script sessions; this is a poem session"):
        Session(model(art), "poem", characters=CAST)
    with pytest.raises(SessionError, match="names 'ANNA' twice"):
        Session(model(art), "script", characters=[("anna", ""), ("ANNA", "")])
    path = tmp_path / "s.json"
    Session(model(art), "script", path=path).write("anna: hi")
    data = json.loads(path.read_text())
    old = {k: v for k, v in data.items() if k not in ("logline", "characters")}  # a file from before the cast
    path.write_text(json.dumps(old))
    s = Session.open(path, model(art))
    assert (s.logline, s.characters, s.text) == ("", [], "anna: hi")
    for bad, why in (([["anna"]], "key 'characters' is not a cast: give a list of \\[name, description\\] pairs"),
                     ("anna", "pairs"), ([["a:b", ""]], "without ':'"), (5, "key 'characters' is not a cast"),
                     (True, "key 'characters' is not a cast"), ([["anna", "x\nben: y"]], "one printable line")):
        path.write_text(json.dumps({**data, "characters": bad}))
        before = path.read_text()
        with pytest.raises(SessionError, match=f"not a gan-writer session .*{why}"):
            Session.open(path, model(art))
        assert path.read_text() == before


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, art):
    path = tmp_path_factory.mktemp("ckpt") / "en.ckpt"
    gen = art.generator
    torch.save({"state_dict": {f"generator.{k}": v for k, v in gen.state_dict().items()},
                "gan_writer": payload(gen, art.tokenizer, max_length=40, metric_tokenization="word")}, path)
    return str(path)


def cowrite(ckpt, session, script, monkeypatch, *options):
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    return main(["cowrite", "--ckpt", ckpt, "--session", str(session), *options])


def test_cowrite_characters_and_logline_from_the_command_line(ckpt, tmp_path, monkeypatch, capsys):
    session, out = tmp_path / "s.json", tmp_path / "play.fountain"
    chars = "anna: a fox; ben: a crow"
    assert cowrite(ckpt, session, f"anna: where is the boat ?\n:next\n:next\n:export {out}\n", monkeypatch,
                   "--characters", chars, "--logline", LOGLINE) == 0  # --kind script implied
    data = json.loads(session.read_text())
    spans = [sp["text"] for sp in data["states"][data["pos"]]["spans"]]
    assert data["kind"] == "script" and data["characters"] == [["anna", "a fox"], ["ben", "a crow"]]
    assert [speaker_of(t, ["anna", "ben"]) for t in spans] == ["anna", "ben", "anna"]
    assert f"Notes: {LOGLINE}" in out.read_text() and "\nBEN\n" in out.read_text()
    capsys.readouterr()
    # reopening: the same cast continues, another is refused and the file is left as it was
    assert cowrite(ckpt, session, ":quit\n", monkeypatch, "--characters", "anna: a fox ;ben:a crow") == 0
    before = session.read_text()
    assert cowrite(ckpt, session, ":next\n", monkeypatch, "--characters", "anna: a fox; cat: a cat") == 2
    err = capsys.readouterr().err
    assert "written with characters 'anna: a fox; ben: a crow'; --characters 'anna: a fox; cat: a cat'" in err
    assert session.read_text() == before
    assert cowrite(ckpt, session, ":quit\n", monkeypatch, "--characters", chars, "--logline", f" {LOGLINE} ") == 0


@pytest.mark.parametrize("options, message", [
    (["--kind", "poem", "--characters", "anna: a fox"], "--logline and --characters are for script sessions, not --kind poem"),
    (["--kind", "story", "--logline", "x"], "not --kind story"),
    (["--characters", "anna"], "--characters entry 'anna' has no 'NAME:'"),
    (["--characters", " ; "], "--characters is empty"),
    (["--logline", ""], "--logline is empty"),
    (["--logline", "  "], "--logline is empty"),
    (["--logline", "one\nTitle: two"], "--logline must be one line"),
    (["--characters", "anna: a", "--form", "wujue"], "--form is for poem sessions, not --kind script"),
    (["--kind", "story", "--form", "quatrain"], "--form is for poem sessions, not --kind story"),
])
def test_cast_options_are_checked_before_anything_is_written(ckpt, tmp_path, monkeypatch, capsys, options, message):
    session = tmp_path / "s.json"
    assert cowrite(ckpt, session, ":quit\n", monkeypatch, *options) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not session.exists()


def test_a_cast_one_per_line_is_several_characters_and_descriptions_are_one_line():
    from gan_writer.writing.script import parse_characters

    assert parse_characters("anna: a fox\nben: a crow\r\ncat:") == [("anna", "a fox"), ("ben", "a crow"), ("cat", "")]
    with pytest.raises(ValueError, match="description of 'anna' must be one printable line"):
        check_characters([("anna", "a fox\nben: a crow")])
    composed, decomposed = "Jos\u00e9", "Jose\u0301"
    with pytest.raises(ValueError, match="twice"):
        check_characters([(composed, ""), (decomposed, "")])
    assert speaker_of(f"{decomposed.upper()}: hola", [composed]) == composed


def test_a_script_rewrite_of_several_lines_gives_as_many_lines_spoken_in_turn(art):
    plain = Session(model(art), "script")
    for line in ("anna: a", "ben: b", "cat: c", "anna: d", "ben: e"):
        plain.write(line)
    cands = plain.rewrite(1, 4, k=2)
    assert all(len(c["text"].split("\n")) == 3 for c in cands)
    plain.choose(0)
    assert len(plain.spans) == 5 and plain.spans[0]["text"] == "anna: a" and plain.spans[-1]["text"] == "ben: e"

    names = ["anna", "ben", "cat"]
    s = Session(model(art), "script", characters=CAST)
    for line in ("anna: a", "ben: b", "cat: c", "anna: d", "ben: e"):
        s.write(line)
    for c in s.rewrite(1, 4, k=3):
        lines = c["text"].split("\n")
        who = [speaker_of(ln, names) for ln in lines]
        assert len(lines) == 3 and None not in who and all(ln.split(":", 1)[1].strip() for ln in lines)
        seq = ["anna", *who, "ben"]
        assert all(a != b for a, b in zip(seq, seq[1:]))  # nobody twice in a row, the seams included
    s.continue_(units=2)
    assert len(s.spans) == 7


def test_the_turn_rule_counts_the_lines_after_an_insert_or_a_rewrite(art):
    cast = [("anna", ""), ("ben", ""), ("cat", ""), ("fox", "")]
    names = [n for n, _ in cast]
    s = Session(model(art), "script", characters=cast)
    for line in ("anna: a", "ben: b", "cat: x", "ben: c", "cat: y", "ben: d", "cat: z"):
        s.write(line)
    assert {speaker_of(c["text"], names) for c in s.infill(1, k=2)} == {"fox"}  # heard least in the whole script
    # anna's only line rewritten: she (and fox) have no line outside it, and neither neighbour is ben
    assert speaker_of(s.rewrite(0, 1, k=1)[0]["text"], names) in {"anna", "fox"}
    s2 = Session(model(art), "script", characters=cast[:3])
    for line in ("anna: a", "ben: b", "cat: c"):
        s2.write(line)
    assert speaker_of(s2.rewrite(0, 1, k=1)[0]["text"], names) == "anna"  # the others are its neighbour or heard more


def test_fountain_cues_with_a_cast_are_the_casts_names_only_in_its_spelling():
    from gan_writer.cowrite.export import fountain

    cast = [("Jos\u00e9", "a sailor"), ("anna", ""), ("INT. HOUSE", "a voice"), ("ben", "says ]] odd")]
    text = fountain(["ANNA: hi", "jos\u00e9: hola", "The door opens: slowly.", "cat: c", "int. house: who?"],
                    "t", "l", cast)
    assert "[[Characters: @JOS\u00c9 - a sailor; ANNA; @INT. HOUSE - a voice; BEN - says ] ] odd]]" in text
    body = text.split("]]\n\n", 1)[1]
    assert body == ("ANNA\nhi\n\n@JOS\u00c9\nhola\n\nThe door opens: slowly.\n\ncat: c\n\n@INT. HOUSE\nwho?\n")
    assert fountain(["old mary: hi", "the door opens slowly: now."]).endswith(
        "OLD MARY\nhi\n\nthe door opens slowly: now.\n")  # without a cast, names by their look


def test_text_export_heads_a_script_with_its_cast_and_the_terminal_shows_it(art):
    from gan_writer.cowrite.terminal import handle

    s = Session(model(art), "script", logline=LOGLINE, characters=CAST, title="the cheese")
    s.write("anna: where is the boat ?")
    assert s.export("text") == (f"the cheese\n{LOGLINE}\n\nanna: a fox\nben: a crow\ncat:\n\n"
                                "anna: where is the boat?\n")
    assert handle(s, ":show").startswith(f"logline: {LOGLINE}\ncast: anna (a fox); ben (a crow); cat\n  1  anna")
    assert Session(model(art), "script").export("text") == "\n"  # no cast: the text alone


def test_studio_ops_refuse_values_of_the_wrong_type(art):
    studio = Studio(Session(model(art), "script", characters=CAST))
    for body, message in (({"op": "write", "text": None}, "'text' must be a string"),
                          ({"op": "write", "text": ["anna: hi"]}, "'text' must be a string"),
                          ({"op": "alternatives", "k": 2.7}, "'k' must be a whole number, got 2.7"),
                          ({"op": "temperature", "temperature": [1]}, "'temperature' must be a number"),
                          ({"op": "temperature"}, "'temperature' must be a number")):
        with pytest.raises(SessionError, match=message):
            studio.run(body)
    assert studio.session.spans == [] and studio.run({"op": "alternatives", "k": 2.0})["candidates"]


def test_hand_edited_titles_loglines_forms_and_extra_keys(art, tmp_path):
    path = tmp_path / "s.json"
    Session(model(art), "script", path=path, characters=CAST).write("anna: hi")
    data = json.loads(path.read_text())
    for change, why in (({"logline": 0}, "key 'logline' is 0, not a string"),
                        ({"title": ["x"]}, "key 'title' is \\['x'\\], not a string"),
                        ({"logline": "one\nTitle: two"}, "key 'logline' must be one line"),
                        ({"form": "wujue"}, "form 'wujue' is for poem sessions; this is a script session")):
        path.write_text(json.dumps({**data, **change}))
        before = path.read_text()
        with pytest.raises(SessionError, match=f"not a gan-writer session \\({why}"):
            Session.open(path, model(art))
        assert path.read_text() == before
    path.write_text(json.dumps({**data, "my_notes": {"draft": 3}}))
    s = Session.open(path, model(art))
    s.write("ben: ho")
    assert json.loads(path.read_text())["my_notes"] == {"draft": 3}  # not ours to drop
    from gan_writer.cowrite.session_file import FIELDS
    assert set(json.loads(path.read_text())) - {"my_notes"} == set(FIELDS)  # FIELDS names every key saved
    with pytest.raises(SessionError, match="--form is for poem sessions"):
        Session(model(art), "script", form="wujue")


def test_write_script_refuses_a_logline_of_two_lines(art):
    from gan_writer.writing.script import write_script

    with pytest.raises(ValueError, match="--logline must be one line"):
        write_script(art, "one\nTitle: two", CAST)


def test_script_lines_processor_keeps_a_piece_to_its_lines():
    from gan_writer.cowrite.decoding import ScriptLines

    proc, logits = ScriptLines([1], units=2, line_tokens=2, eos_token_id=0), torch.zeros(1, 5)

    def allowed(*drawn):
        return torch.isfinite(proc(torch.tensor([list(drawn)], dtype=torch.long), logits)[0]).nonzero().flatten().tolist()

    assert allowed() == [2, 3, 4]  # no empty line, no end before the last line
    assert allowed(3) == [1, 2, 3, 4]  # a break may come; the end not yet
    assert allowed(3, 4) == [1]  # the first line is full: a break
    assert allowed(3, 1) == [2, 3, 4]  # the second line has begun nothing yet
    assert allowed(3, 1, 4) == [0, 1, 2, 3, 4]
    assert allowed(3, 1, 4, 4) == [0] and allowed(3, 1, 4, 1) == [0]  # the last line full, or broken: the end


def test_cast_names_outside_the_vocabulary_are_noted_at_start(ckpt, tmp_path, monkeypatch, capsys):
    assert cowrite(ckpt, tmp_path / "s.json", ":show\n", monkeypatch, "--characters", "anna: a fox; zed: a dog") == 0
    err = capsys.readouterr().err
    assert "the model's vocabulary has no 'zed'" in err and "'anna'" not in err
    assert cowrite(ckpt, tmp_path / "t.json", ":quit\n", monkeypatch, "--characters", "anna: a fox; ben: a crow") == 0
    assert "vocabulary" not in capsys.readouterr().err
