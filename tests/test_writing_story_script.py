"""Story endings (distinct, labelled) and Dramatron-style scripts (structure, speakers, Fountain)."""
import pytest
import torch
from helpers import tiny_gpt2

from gan_writer.checkpoint import Artifacts
from gan_writer.metrics.bleu import self_bleu
from gan_writer.tokenization import word_tokenizer
from gan_writer.writing.safety import SafetyFilter
from gan_writer.writing.script import _loops, parse_characters, render, write_script
from gan_writer.writing.story import fit_prompt, select_diverse, write_endings

TEXT = ("once upon a time a fox met a crow in the wood . the crow had cheese and the fox was hungry . "
        "anna : where is the boat ? ben : by the river , under the old tree . the night was cold and dark \n")


@pytest.fixture(scope="module")
def art():
    tok = word_tokenizer([TEXT])
    return Artifacts(tiny_gpt2(vocab=len(tok), seed=0, n_positions=64).eval(), tok, {"metric_tokenization": "word"})


@pytest.fixture(scope="module")
def filt():
    return SafetyFilter(classifier=False)


def test_endings_are_distinct_and_labelled(art, filt):
    out = write_endings(art, "once upon a time a fox", endings=3, length=12, candidates=12, safety_filter=filt)
    assert [o["report"]["label"] for o in out] == ["A", "B", "C"]
    texts = [o["text"] for o in out]
    assert len(set(texts)) == 3 and all(texts)
    stats = out[0]["report"]["set"]
    assert stats["self_bleu_2"] == pytest.approx(self_bleu([t.split() for t in texts], 2))
    assert 0.0 < stats["distinct_2"] <= 1.0


def test_diverse_selection_skips_a_near_copy():
    toks = [["a", "b", "c", "d"], ["a", "b", "c", "d"], ["w", "x", "y", "z"]]
    assert select_diverse([1.0, 0.99, 0.5], toks, 2) == [0, 2]
    assert select_diverse([1.0, 0.99, 0.5], toks, 2, diversity_weight=0.0) == [0, 1]


@pytest.mark.parametrize("prompt_len,length,window,kept,fitted", [
    (10, 60, 64, 10, 54),   # a short beginning: the ending takes all the room after it (not half the window)
    (10, 40, 64, 10, 40),   # fits: unchanged
    (60, 60, 64, 32, 32),   # a long beginning: the ending keeps half the window, the beginning's start is cut
    (60, 2, 64, 60, 2),
    (5, 100, None, 5, 100),
])
def test_fit_prompt_keeps_the_whole_beginning_when_it_can(prompt_len, length, window, kept, fitted):
    prompt = torch.arange(prompt_len)
    cut, n = fit_prompt(prompt, length, window)
    assert (cut.numel(), n) == (kept, fitted)
    assert torch.equal(cut, prompt[prompt_len - kept:])
    assert window is None or cut.numel() + n <= window


def test_endings_report_the_length_that_fitted(art, filt):
    out = write_endings(art, "once upon a time a fox", endings=1, length=100, candidates=2, safety_filter=filt)
    stats = out[0]["report"]["set"]
    assert (stats["beginning_tokens"], out[0]["report"]["prompt_tokens"]) == (6, 6)
    assert (stats["length"], stats["max_positions"]) == (64 - 6, 64)
    assert out[0]["report"]["tokens"] <= 58


@pytest.mark.parametrize("beginning,match", [("", "empty"), ("a zebra", "outside the checkpoint's vocabulary")])
def test_bad_beginnings(art, filt, beginning, match):
    with pytest.raises(ValueError, match=match):
        write_endings(art, beginning, safety_filter=filt)


def test_script_structure_speakers_and_fountain(art, filt):
    chars = parse_characters("ANNA: a sailor; BEN: her brother; CROW: a bird")
    res = write_script(art, "a fox wants the cheese of a crow", chars, scenes=3, turns=4, safety_filter=filt)
    rep, text = res["report"], res["text"]
    assert rep["scenes"] == 3 and rep["turns"] == 12 and set(rep["speakers"]) <= {"ANNA", "BEN", "CROW"}
    assert text.startswith("Title: ") and text.count("\nINT. ") == 3
    lines = text.split("\n")
    cues = [lines[i] for i in range(1, len(lines) - 1) if lines[i - 1] == "" and lines[i].isupper()
            and not lines[i].startswith("INT.") and lines[i + 1]]
    assert len(cues) >= 12 and set(cues) <= {"ANNA", "BEN", "CROW"}
    assert 0.0 < res["score"] <= 1.0
    plain = write_script(art, "a fox", chars[:2], scenes=1, turns=2, fmt="text", safety_filter=filt)["text"]
    assert "SCENE 1:" in plain and ("ANNA: " in plain or "BEN: " in plain)


@pytest.mark.parametrize("spec,match", [("", "empty"), (" ; ", "empty"), ("ANNA a sailor", "no 'NAME:'"),
                                        ("ANNA: x; anna: y", "twice")])
def test_bad_character_lists(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_characters(spec)


def test_loop_detection():
    assert _loops("", []) and _loops("the fox", ["the fox"])
    assert _loops("a b a b a b a b a b", []) and not _loops("where is the boat now", [])


def test_render_marks_non_latin_names_for_fountain():
    text = render("T", "L", [("李白", "诗人")], [{"place": "江边", "beat": "告别", "dialogue": [{"speaker": "李白", "line": "去"}]}])
    assert "\n@李白\n去\n" in text and "INT. 江边 - DAY" in text


def test_every_character_speaks_when_turns_allow(art, filt):
    chars = parse_characters("ANNA: a sailor; BEN: her brother; MARY: their mother")
    res = write_script(art, "a sailor comes home", chars, scenes=1, turns=3, safety_filter=filt)
    assert res["report"]["speakers"] == ["ANNA", "BEN", "MARY"]


def test_block_mode_drops_flagged_endings(filt):
    tok = word_tokenizer(["shit damn the fox ran shit away into the dark wood shit and the crow sang"])
    art = Artifacts(tiny_gpt2(vocab=len(tok), seed=1, n_positions=32).eval(), tok, {"metric_tokenization": "word"})
    flagged = write_endings(art, "the fox", endings=12, length=10, candidates=12, safety_filter=filt)
    assert any(e["report"]["safety"]["flagged"] for e in flagged)
    blocked = write_endings(art, "the fox", endings=3, length=10, candidates=12, safety="block", safety_filter=filt)
    assert blocked and not any(e["report"]["safety"]["flagged"] or "shit" in e["text"] for e in blocked)


def test_fountain_cues_are_names_not_any_text_before_a_colon():
    from gan_writer.cowrite.export import fountain

    text = fountain(["ANNA: I am home.", "old mary: where were you?", "李白: 去", "the are as said ‘ hair: a wind",
                     "at 9: the bell", "BEN:"], "T")
    assert "\nANNA\nI am home.\n" in text and "\nOLD MARY\nwhere were you?\n" in text and "\n@李白\n去\n" in text
    assert "\nthe are as said ‘ hair: a wind\n" in text and "\nat 9: the bell\n" in text and "\nBEN:\n" in text
