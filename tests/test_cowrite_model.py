"""The model behind co-writing: a wujue continued line by line under the form, steering,
banned words (processors over the project's decode), cancellation."""
import threading

import pytest
import torch
from helpers import tiny_gpt2

from gan_writer.checkpoint import Artifacts
from gan_writer.cowrite.decoding import Cancelled, SteerBan
from gan_writer.cowrite.generator import ModelGenerator, Request
from gan_writer.cowrite.session import Session
from gan_writer.tokenization import char_tokenizer

HANZI = "白日依山尽黄河入海流欲穷千里目更上一层楼月落乌啼霜满天江枫渔火对愁眠，。"


@pytest.fixture(scope="module")
def art():
    tok = char_tokenizer([HANZI])
    gen = tiny_gpt2(vocab=len(tok), seed=0, n_positions=32).eval()
    return Artifacts(gen, tok, {"metric_tokenization": "char"})


def test_wujue_line_by_line(art):
    s = Session(ModelGenerator(art), "poem", "wujue", seed=4)
    s.write("白日依山尽")
    cands = s.alternatives(3)
    assert 1 <= len(cands) <= 3 and len({c["text"] for c in cands}) == len(cands)
    for c in cands:
        assert len(c["text"]) == 6 and c["text"].endswith("。") and "\n" not in c["text"]
        assert c["report"]["form"]["line_ok"] and not c["report"]["form"]["complete"]
        assert c["report"]["safety"]["flagged"] is False and 0 <= c["score"] <= 1
    assert [c["score"] for c in cands] == sorted((c["score"] for c in cands), reverse=True)
    s.choose(0)
    s.continue_()
    s.alternatives(2)
    s.choose(1)
    lines = s.text.split("\n")
    assert [len(x) for x in lines] == [6, 6, 6, 6] and [x[-1] for x in lines] == ["，", "。", "，", "。"]
    assert s.candidates == [] and [x["author"] for x in s.spans] == ["writer", "model", "model", "model"]
    with pytest.raises(ValueError, match="already has its 4 lines"):
        s.alternatives(2)
    cands = s.rewrite(1, 2, keywords=["月"])
    assert all(len(c["text"]) == 6 and c["text"].endswith("。") and c["report"]["form"]["complete"] for c in cands)
    r = s.replay()
    assert r.states == s.states


def test_ban_and_steer_change_the_draws(art):
    gen = ModelGenerator(art)
    base = Request("poem", "wujue", "", units=4, k=8, seed=1)
    plain = "".join(c["text"] for c in gen.propose(base))
    banned = "".join(c["text"] for c in gen.propose(Request(**{**base.__dict__, "bans": ("月", "江")})))
    steered = "".join(c["text"] for c in gen.propose(Request(**{**base.__dict__, "keywords": ("月",)})))
    assert "月" not in banned and "江" not in banned
    assert steered.count("月") > plain.count("月")


def test_steerban_multi_token_word_bans_only_after_its_head():
    proc = SteerBan([[3]], [[5, 6], [7]], bias=2.0)
    drawn = torch.tensor([[1, 5], [1, 4]])
    out = proc(drawn, torch.zeros(2, 10))
    assert out[0, 6] == float("-inf") and out[1, 6] == 0.0  # 6 banned only after 5
    assert bool((out[:, 7] == float("-inf")).all()) and bool((out[:, 3] == 2.0).all())
    only = torch.full((1, 10), float("-inf"))
    only[0, 7] = 0.0
    assert proc(torch.tensor([[1]]), only)[0, 7] == 0.0  # never leaves a row without a token


def test_cancel_raises_and_leaves_the_session_unchanged(art):
    s = Session(ModelGenerator(art), "poem", "wujue")
    stop = threading.Event()
    seen = []

    def progress(i, steps):
        seen.append((i, steps))
        if i == 2:
            stop.set()
    with pytest.raises(Cancelled):
        s.alternatives(2, units=4, progress=progress, cancel=stop)
    assert seen[:3] == [(0, seen[0][1]), (1, seen[0][1]), (2, seen[0][1])] and s.log == [] and s.pos == 0


def test_story_endings_and_script_lines(art):
    s = Session(ModelGenerator(art, passage_tokens=6), "story")
    s.write("白日依山尽，")
    s.branch(2)
    sibs = s.state["branch"]["siblings"]
    assert len(sibs) == 2 and sibs[0] != sibs[1] and s.text == "白日依山尽，" + sibs[0][0]["text"]
    s.switch(1)
    assert s.text == "白日依山尽，" + sibs[1][0]["text"] and s.spans[-1]["author"] == "model"
    sc = Session(ModelGenerator(art, passage_tokens=6), "script")
    sc.write("李白: 月落乌啼")
    sc.continue_()
    assert len(sc.spans) == 2 and "\n" not in sc.spans[1]["text"] and sc.export("fountain").count("@李白") == 1


def test_strict_rhyme_line_by_line(art):
    s = Session(ModelGenerator(art, strict_rhyme=True), "poem", "wujue", seed=3)
    s.write("白日依山尽")
    for _ in range(3):
        s.continue_()
    from gan_writer.writing.forms import form_report

    rep = form_report(s.text, "wujue")
    assert rep["line_ok"] and rep["rhyme_ok"], s.text


EN_WORDS = ("the night was bright and the light was white , a day in may to play and stay . "
            "my heart will start apart from art ; the sea and me are free to be \n")


@pytest.mark.parametrize("a, b", [(0, 1), (0, 2), (1, 2)])
def test_rewriting_english_lines_rhymes_with_the_fixed_lines_after_them(a, b):
    """ABAB quatrain, lines 3-4 fixed: rewritten lines 1 (and 2) must rhyme with lines 3 (and 4);
    a user trial saw line 1 rewritten to end in "pleased" while line 3 kept "he"."""
    from gan_writer.tokenization import word_tokenizer
    from gan_writer.writing import rhyme as R

    tok = word_tokenizer([EN_WORDS])
    gen = tiny_gpt2(vocab=len(tok), seed=1, n_positions=96).eval()
    s = Session(ModelGenerator(Artifacts(gen, tok, {"metric_tokenization": "word"})), "poem", "quatrain", seed=2)
    for line in ("the night was bright and white", "a day in may to play", "my heart and me are free",
                 "the sea to play and stay"):
        s.write(line)
    ends = [R.last_word(sp["text"]) for sp in s.spans]
    for cand in s.rewrite(a, b, k=4):
        new = cand["text"].split("\n")
        assert len(new) == b - a
        for i, line in enumerate(new, start=a):
            partner = ends[i + 2]  # ABAB: line i rhymes with line i + 2, which stays
            assert R.english_rhymes(partner, R.last_word(line)), (line, partner)
