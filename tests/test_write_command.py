"""``gan-writer write``: the JSON schema, the printed reports, and clear errors on bad input."""
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


def test_poem_json_schema(ckpt, capsys):
    assert main(["write", "poem", "--ckpt", ckpt, "--form", "wujue", "--n", "3", "--candidates", "6",
                 "--keywords", "月", "--json", "--seed", "1"]) == 0
    poems = json.loads(capsys.readouterr().out)
    assert len(poems) == 3
    for p in poems:
        assert set(p) == {"text", "report", "score"} and 0.0 <= p["score"] <= 1.0
        lines = p["text"].split("\n")
        assert [len(ln) for ln in lines] == [6] * 4 and lines[0].endswith("，") and lines[3].endswith("。")
        assert p["report"]["line_ok"] and "keywords" in p["report"]["score_parts"]
        found = "月" in p["text"]
        assert p["report"]["keywords"] == {"found": ["月"] * found, "missing": ["月"] * (not found)}
        assert p["report"]["score_parts"]["keywords"] == float(found)
    assert [p["score"] for p in poems] == sorted((p["score"] for p in poems), reverse=True)


def test_human_output_names_the_keywords_found_and_missing(ckpt, capsys):
    assert main(["write", "poem", "--ckpt", ckpt, "--form", "wujue", "--n", "4", "--candidates", "8",
                 "--keywords", "月,江", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    poems = [block for block in out.split("== poem ")[1:]]
    assert len(poems) == 4
    for block in poems:
        text = "\n".join(block.splitlines()[1:5])
        expected = "; ".join(part for part in (
            "found " + ", ".join(k for k in ("月", "江") if k in text) if any(k in text for k in ("月", "江")) else "",
            "missing " + ", ".join(k for k in ("月", "江") if k not in text) if not all(k in text for k in ("月", "江"))
            else "") if part)
        assert f"\n  keywords: {expected}\n" in block


def test_english_keywords_match_whole_words():
    from gan_writer.writing.rerank import keyword_score, keywords_found

    line = "My heart is smart, its own Summer, and the summer-time is short"
    assert keywords_found(line, ["art", "summer", "heart", "time", "sum", "夏"]) == [False, True, True, True, False, False]
    assert keywords_found("春江潮水连海平", ["江", "海平", "月"]) == [True, True, False]
    assert keyword_score(line, ["summer", "sum"]) == 0.5 and keyword_score(line, []) == 1.0


def test_qijue_human_output(ckpt, capsys):
    assert main(["write", "poem", "--ckpt", ckpt, "--form", "qijue", "--n", "2", "--candidates", "4"]) == 0
    out = capsys.readouterr().out
    assert out.count("== poem") == 2 and out.count(" 7 chars ") == 8 and "平仄" in out


def test_story_and_script_json(ckpt, capsys):
    assert main(["write", "story", "--ckpt", ckpt, "--beginning", "白日依山尽，", "--endings", "3", "--length", "10",
                 "--json"]) == 0
    endings = json.loads(capsys.readouterr().out)
    assert len(endings) == 3 and len({e["text"] for e in endings}) == 3
    assert main(["write", "script", "--ckpt", ckpt, "--logline", "江月", "--characters", "李白: 诗人; 王伦: 友人",
                 "--scenes", "2", "--turns", "2", "--json"]) == 0
    (script,) = json.loads(capsys.readouterr().out)
    assert script["report"]["scenes"] == 2 and set(script["report"]["speakers"]) <= {"李白", "王伦"}


def test_story_says_when_length_and_beginning_do_not_fit(ckpt, capsys):
    assert main(["write", "story", "--ckpt", ckpt, "--beginning", "白日依山尽，", "--endings", "1", "--length", "40",
                 "--candidates", "2"]) == 0
    err = capsys.readouterr().err
    assert "--length 40 is cut to 26 tokens: the generator holds 32 positions and the beginning takes 6" in err
    assert "left out" not in err
    assert main(["write", "story", "--ckpt", ckpt, "--beginning", "白日依山尽" * 6, "--endings", "1", "--length", "20",
                 "--candidates", "2"]) == 0
    err = capsys.readouterr().err
    assert "--length 20 is cut to 16 tokens" in err
    assert "the beginning's first 14 of 30 tokens are left out" in err and "its last 16)" in err


@pytest.mark.parametrize("argv,message", [
    (["poem", "--form", "wujue", "--candidates", "0"], "--candidates must be at least 1, got 0"),
    (["poem", "--form", "wujue", "--n", "2000"], "--n must be at most 1024"),
    (["story", "--beginning", "x", "--length", "0"], "--length must be at least 1, got 0"),
    (["story", "--beginning", "x", "--candidates", "-3"], "--candidates must be at least 1, got -3"),
    (["script", "--logline", "x", "--characters", "A: b", "--turns", "0"], "--turns must be at least 1, got 0"),
    (["script", "--logline", "x", "--characters", "A: b", "--scenes", "51"], "--scenes must be at most 50"),
])
def test_counts_are_refused_before_any_note_or_load(tmp_path, capsys, argv, message):
    missing = str(tmp_path / "no.ckpt")
    assert main(["write", argv[0], "--ckpt", missing, *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert message in err and "note:" not in err and "no.ckpt" not in err and "Traceback" not in err


@pytest.mark.parametrize("argv,message", [
    (["poem", "--form", "ode"], "unknown form 'ode'"),
    (["poem", "--form", "sonnet", "--rhyme", "ABAB"], "does not fit the sonnet form"),
    (["poem", "--form", "wujue", "--keywords", "雪"], "keyword '雪' is not in the checkpoint's vocabulary"),
    (["poem", "--form", "quatrain"], "cannot write a line break"),
    (["script", "--logline", "江", "--characters", " ; "], "--characters is empty"),
    (["story", "--beginning", "@/nonexistent/file.txt"], "no such file"),
    (["story", "--beginning", "@/tmp"], "--beginning @/tmp: /tmp is a folder; give @FILE, a UTF-8 text file"),
])
def test_bad_input_is_a_clear_error(ckpt, capsys, argv, message):
    assert main(["write", argv[0], "--ckpt", ckpt, *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_discriminator_checkpoint_joins_the_reranking(ckpt, tmp_path, capsys):
    from gan_writer.systems.discriminator import DiscriminatorConfig

    config = DiscriminatorConfig(kind="cnn", embed_dim=8)
    state = torch.load(ckpt, weights_only=False)
    vocab = state["state_dict"]["generator.model.transformer.wte.weight"].size(0)
    torch.manual_seed(0)
    disc = config.build(vocab, 25, 0)
    spec = {"config": {k: getattr(config, k) for k in config.__dataclass_fields__}, "vocab_size": vocab,
            "max_length": 25, "pad_token_id": 0}
    state["state_dict"].update({f"discriminator.{k}": v for k, v in disc.state_dict().items()})
    state["gan_writer"]["discriminator"] = spec
    path = tmp_path / "with_disc.ckpt"
    torch.save(state, path)
    assert main(["write", "poem", "--ckpt", ckpt, "--disc", str(path), "--form", "wujue", "--n", "2",
                 "--candidates", "4", "--json"]) == 0
    poems = json.loads(capsys.readouterr().out)
    probs = [p["report"]["score_parts"]["discriminator"] for p in poems]
    assert all(0.0 < q < 1.0 for q in probs)


def _disc_checkpoint(path, tok):
    """A checkpoint holding a CNN discriminator (and tokenizer) trained with ``tok``'s vocabulary."""
    from gan_writer.systems.discriminator import DiscriminatorConfig

    config = DiscriminatorConfig(kind="cnn", embed_dim=8)
    gen = tiny_gpt2(vocab=len(tok), seed=1, n_positions=32)
    torch.manual_seed(0)
    disc = config.build(len(tok), 25, 0)
    spec = {"config": {k: getattr(config, k) for k in config.__dataclass_fields__}, "vocab_size": len(tok),
            "max_length": 25, "pad_token_id": 0}
    state = {f"generator.{k}": v for k, v in gen.state_dict().items()}
    state.update({f"discriminator.{k}": v for k, v in disc.state_dict().items()})
    torch.save({"state_dict": state, "gan_writer": {**payload(gen, tok, max_length=25), "discriminator": spec}}, path)
    return str(path)


@pytest.mark.parametrize("letters", [
    "abcdefghij",  # a smaller vocabulary: the generator's ids index past its embedding (was an IndexError)
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",  # a larger one: was scored silently
    None,  # as many tokens as the generator's, other tokens: was scored silently
])
@pytest.mark.parametrize("what", [
    ["poem", "--form", "wujue", "--n", "1", "--candidates", "2"],
    ["story", "--beginning", "白日依山尽，", "--endings", "1", "--length", "5"],
])
def test_discriminator_of_another_vocabulary_is_refused(ckpt, tmp_path, capsys, letters, what):
    ours = char_tokenizer([HANZI])
    if letters is None:
        pool = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        letters = next(pool[:k] for k in range(1, len(pool)) if len(char_tokenizer([pool[:k]])) == len(ours))
    tok = char_tokenizer([letters])
    disc = _disc_checkpoint(tmp_path / "english_disc.ckpt", tok)
    assert main(["write", what[0], "--ckpt", ckpt, "--disc", disc, *what[1:]]) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in err and out == "" and err.count("error:") == 1
    assert err.splitlines()[-1].startswith(f"gan-writer write {what[0]}: error: ")  # one line, after "checkpoint: X"
    assert f"error: --disc {disc} was trained with another vocabulary ({len(tok)} tokens)" in err
    assert f"than the generator of --ckpt {ckpt} ({len(ours)} tokens)" in err


def test_discriminator_of_the_same_vocabulary_is_used(ckpt, tmp_path, capsys):
    disc = _disc_checkpoint(tmp_path / "disc.ckpt", char_tokenizer([HANZI]))
    assert main(["write", "story", "--ckpt", ckpt, "--disc", disc, "--beginning", "白日依山尽，", "--endings", "2",
                 "--length", "5", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


def test_beginning_file_that_is_not_utf8_is_named(ckpt, tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes("白日依山".encode("utf-8") + b"\xff\xfe")
    assert main(["write", "story", "--ckpt", ckpt, "--beginning", f"@{bad}", "--endings", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"--beginning @{bad}: {bad} is not UTF-8 text" in err and "save it as UTF-8" in err


def test_candidates_raised_to_the_pieces_asked_for_is_documented_and_noted(ckpt, capsys):
    for what, documented in (("poem", "raised to --n when smaller"), ("story", "raised to --endings when smaller")):
        with pytest.raises(SystemExit):
            main(["write", what, "--help"])
        assert documented in " ".join(capsys.readouterr().out.split())
    assert main(["write", "poem", "--ckpt", ckpt, "--form", "wujue", "--n", "3", "--candidates", "2", "--json"]) == 0
    out, err = capsys.readouterr()
    assert len(json.loads(out)) == 3
    assert "note: --candidates 2 is raised to --n 3" in err
    assert main(["write", "story", "--ckpt", ckpt, "--beginning", "白日依山尽，", "--endings", "2", "--candidates", "1",
                 "--length", "5", "--json"]) == 0
    assert "note: --candidates 1 is raised to --endings 2" in capsys.readouterr().err


def test_script_human_summary_counts_scenes_in_words(ckpt, capsys):
    assert main(["write", "script", "--ckpt", ckpt, "--logline", "江月", "--characters", "李白: 诗人; 王伦: 友人",
                 "--scenes", "1", "--turns", "2"]) == 0
    err = capsys.readouterr().err
    assert "-- 1 scene, 2 turns, speakers " in err and "1 scenes" not in err


def test_ending_labels_go_on_past_z(ckpt, capsys):
    from gan_writer.commands.write import ending_label

    assert [ending_label(i) for i in (0, 1, 25, 26, 27, 51, 52, 701, 702)] == \
        ["A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]
    assert main(["write", "story", "--ckpt", ckpt, "--beginning", "白日依山尽，", "--endings", "28",
                 "--candidates", "40", "--length", "4"]) == 0
    labels = [ln.split()[2] for ln in capsys.readouterr().out.splitlines() if ln.startswith("== ending ")]
    assert labels == [ending_label(i) for i in range(len(labels))] and len(labels) > 26
