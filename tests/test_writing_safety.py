"""The writing safety filter: word boundaries, allow-list, classical verse, modes, no network."""
import subprocess
import sys

import pytest
from helpers import tiny_gpt2

from gan_writer.checkpoint import Artifacts
from gan_writer.tokenization import char_tokenizer
from gan_writer.writing.poem import write_poems
from gan_writer.writing.safety import SafetyFilter, check_mode


@pytest.fixture(scope="module")
def words_only():
    return SafetyFilter(classifier=False)


@pytest.mark.parametrize("text", ["可靠", "操作", "大麻烦", "Scunthorpe", "classic", "a classical grasshopper",
                                  "古来征战几人回", "醉卧沙场君莫笑，古来征战几人回。", "可怜无定河边骨",
                                  "可靠的操作", "rapture", "grapes", "therapists", "shitake", "cocktails", "spices",
                                  "spiced", "heroines", "a cocker spaniel"])
def test_innocent_text_passes(words_only, text):
    assert not words_only.check(text).flagged


@pytest.mark.parametrize("text,span", [("你这个傻逼", "傻逼"), ("他抽大麻", "大麻"), ("what the Fuck", "Fuck"),
                                       ("you ass.", "ass"),
                                       # a user trial: traditional script and inflections passed
                                       ("你這個傻逼", "傻逼"), ("強姦", "強姦"), ("滾蛋吧", "滾蛋"),
                                       ("oh shits", "shits"), ("two whores", "whores"), ("he raped", "raped"),
                                       ("raping", "raping"), ("pricks!", "pricks"),
                                       # offsets into the text, also after a capital whose lower case is longer
                                       ("İ hate shit", "shit")])
def test_listed_terms_are_flagged_with_their_span(words_only, text, span):
    res = words_only.check(text)
    assert res.flagged and [text[s["start"]:s["end"]] for s in res.spans] == [span]
    assert res.to_dict()["list_version"] == words_only.version != ""


def test_bad_mode_and_bad_list(tmp_path):
    with pytest.raises(ValueError, match="choose one of flag, rerank, block"):
        check_mode("censor")
    bad = tmp_path / "terms.json"
    bad.write_text('{"version": "x"}', encoding="utf-8")
    with pytest.raises(ValueError, match="terms.json"):
        SafetyFilter(bad)


def test_filter_and_classifier_never_reach_the_network():
    code = r"""
import socket
def refuse(*a, **k):
    raise RuntimeError("network used")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from gan_writer.writing.safety import SafetyFilter
f = SafetyFilter()
print(f.has_classifier, f.check("fuck you, bitch").flagged, f.check("Scunthorpe is a classic town").flagged)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    has_classifier, bad, good = out.stdout.split()
    assert (bad, good) == ("True", "False")
    try:
        import profanity_check  # noqa: F401
        assert has_classifier == "True"
    except ModuleNotFoundError:
        assert has_classifier == "False"


def _artifacts(seed=0):
    tok = char_tokenizer(["傻逼天山月水，。"])
    gen = tiny_gpt2(vocab=len(tok), seed=seed, n_positions=24).eval()
    return Artifacts(gen, tok, {"max_length": 24})


def test_block_resamples_flagged_drafts_and_flag_only_shows_them(words_only):
    art = _artifacts()
    flagged = write_poems(art, "wujue", n=8, candidates=16, safety="flag", safety_filter=words_only)
    assert any(p["report"]["safety"]["flagged"] for p in flagged)  # the vocabulary makes 傻逼 common
    blocked = write_poems(art, "wujue", n=4, candidates=16, safety="block", safety_filter=words_only)
    assert blocked and not any(p["report"]["safety"]["flagged"] for p in blocked)
    assert all("傻逼" not in p["text"] for p in blocked)
    reranked = write_poems(art, "wujue", n=16, candidates=16, safety="rerank", safety_filter=words_only)
    flags = [p["report"]["safety"]["flagged"] for p in reranked]
    assert flags == sorted(flags) and any(flags) and not all(flags)  # clean drafts first
