"""Forms: the form report on real poems (famous ones pass, perturbed copies fail), bad input,
and the hard constraints of constrained decoding under tiny random models."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import tiny_gpt2

from gan_writer.tokenization import char_tokenizer, word_tokenizer
from gan_writer.writing import rhyme as R
from gan_writer.writing.constraints import FormProcessor, constrained_sample, max_tokens
from gan_writer.writing.forms import form_report, get_form, split_lines

DENG = "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。"  # 王之涣《登鹳雀楼》
FENGQIAO = "月落乌啼霜满天，江枫渔火对愁眠。姑苏城外寒山寺，夜半钟声到客船。"  # 张继《枫桥夜泊》
CHUNWANG = ("国破山河在，城春草木深。感时花溅泪，恨别鸟惊心。"
            "烽火连三月，家书抵万金。白头搔更短，浑欲不胜簪。")  # 杜甫《春望》


@pytest.mark.parametrize("text,form", [(DENG, "wujue"), (FENGQIAO, "qijue"), (CHUNWANG, "wulv")])
def test_famous_poems_pass(text, form):
    r = form_report(text, form)
    assert r["line_ok"] and r["rhyme_ok"] and r["tone_ok"], r
    assert r["tone_score"] == 1.0


def test_perturbed_copies_fail():
    short = DENG.replace("更上一层楼", "更上一楼")
    assert not form_report(short, "wujue")["line_ok"]
    unrhymed = DENG.replace("层楼", "层山")  # 山 (删) does not rhyme with 流 (尤)
    r = form_report(unrhymed, "wujue")
    assert r["line_ok"] and not r["rhyme_ok"]
    off_tone = DENG.replace("黄河", "黄海")  # 2nd character of line 2 becomes 仄
    r = form_report(off_tone, "wujue")
    assert r["line_ok"] and not r["tone_ok"] and r["tone_score"] < 1.0
    assert not form_report(DENG, "qijue")["line_ok"]


def test_tone_classes_come_from_pingshui_with_labelled_fallback():
    assert R.tone("流") == ("平", "pingshui") and R.tone("目")[0] == "仄" and R.tone("入")[0] == "仄"  # 入声
    assert R.chinese_rhymes("流", "楼") and not R.chinese_rhymes("流", "山")
    assert form_report(DENG, "wujue")["tone_source"] == {"pingshui": 20}
    # 啼 is missing from the package's table: its modern tone is used and labelled as such
    assert R.tone("啼") == ("平", "pinyin")
    assert form_report(FENGQIAO, "qijue")["tone_source"] == {"pingshui": 27, "pinyin": 1}


def test_english_report_on_shakespeare():
    s18 = ("Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:\n"
           "Rough winds do shake the darling buds of May,\nAnd summer's lease hath all too short a date:")
    r = form_report(s18, "quatrain")
    assert r["line_ok"] and [p["rhyme"] for p in r["rhyme_pairs"]] == [True, False]  # temperate/date: eye rhyme
    assert [ln["syllables"] for ln in r["lines"]] == [10, 9, 10, 10]
    r = form_report(s18, "quatrain", "AXAX")
    assert r["rhyme_ok"] is True
    assert R.english_rhymes("night", "light") and not R.english_rhymes("night", "night")


@pytest.mark.parametrize("name,rhyme,match", [
    ("ode", None, "unknown form 'ode'"),
    ("sonnet", "ABAB", "does not fit the sonnet form"),
    ("quatrain", "AB1B", "does not fit the quatrain form"),
    ("wujue", "ABAB", "fixed 平水韵"),
    ("free", "AA", "free verse"),
])
def test_bad_forms_and_rhyme_schemes(name, rhyme, match):
    with pytest.raises(ValueError, match=match):
        get_form(name, rhyme)


HANZI = "白日依山尽黄河入海流欲穷千里目更上一层楼月落乌啼霜满天江枫渔火对愁眠"
# a word-level tokenizer over Chinese: tokens of 1-3 characters, so counting must be by characters
WORDY_ZH = word_tokenizer(["白日 依山 尽 黄河 入海流 欲穷 千里目 更上 一层楼 月落 乌啼 霜满天 ， 。 abc"])


TOK_ZH = char_tokenizer([HANZI + "，。、！？abc"])


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), temperature=st.floats(0.3, 3.0), peak=st.floats(1.0, 30.0),
       form_name=st.sampled_from(["wujue", "wujue", "qijue", "wulv"]), multi_char=st.booleans())
def test_any_tiny_random_model_yields_the_form(seed, temperature, peak, form_name, multi_char):
    """Property: whatever a random model prefers, the constrained draft has the exact shape
    (also with a tokenizer whose tokens hold several characters, as word/BPE pieces do)."""
    tok = WORDY_ZH if multi_char else TOK_ZH
    form, _ = get_form(form_name)
    steps = max_tokens(form, 0)
    gen = tiny_gpt2(vocab=len(tok), seed=seed, n_positions=steps).eval()
    with torch.no_grad():  # a random, strongly peaked preference
        gen.model.lm_head.weight.mul_(peak)
    proc = FormProcessor(form, tok, gen.eos_token_id)
    ids = constrained_sample(gen, 6, steps, proc, temperature=temperature, seed=seed)
    for text in tok.batch_decode(ids.tolist(), skip_special_tokens=True):
        verses = split_lines(text, "zh")
        assert [len(v) for v in verses] == [form.chars] * form.lines, text
        assert text.count("，") == form.lines // 2 and text.endswith("。")


def test_chinese_form_needs_its_punctuation():
    tok = char_tokenizer([HANZI])
    with pytest.raises(ValueError, match="no token for '，'"):
        FormProcessor(get_form("wujue")[0], tok, 2)


WORDS = ("the night was bright and the light was white , a day in may to play and stay . "
         "my heart will start apart from art ; the sea and me are free to be \n")


def english_drafts(corpus: str, form_name: str, rhyme, seeds: int):
    """``(form, scheme, texts)``: 6 constrained drafts of each of ``seeds`` tiny random models."""
    tok = word_tokenizer([corpus])
    form, scheme = get_form(form_name, rhyme)
    steps = max_tokens(form, 0)
    texts = []
    for seed in range(seeds):
        gen = tiny_gpt2(vocab=len(tok), seed=seed, n_positions=steps).eval()
        proc = FormProcessor(form, tok, gen.eos_token_id, scheme, steps=steps)
        texts += tok.batch_decode(constrained_sample(gen, 6, steps, proc, seed=seed).tolist(), skip_special_tokens=True)
    return form, scheme, texts


@pytest.mark.parametrize("form_name,rhyme", [("quatrain", "ABAB"), ("couplet", None), ("sonnet", None), ("quatrain", "AABB"),
                                            ("quatrain", "AAAA")])
def test_english_rhyme_scheme_is_hard(form_name, rhyme):
    """Every pair of lines of a rhyme letter rhymes (AAAA: six pairs); an end word is never
    repeated within a letter (a user trial got strife / life / life / life, passed as rhymes)."""
    form, scheme, texts = english_drafts(WORDS, form_name, rhyme, 3)
    for text in texts:
        r = form_report(text, form, scheme)
        assert r["line_ok"] and r["rhyme_ok"], (text, r["rhyme_pairs"])
        groups = {letter: sum(1 for x in scheme if x == letter) for letter in set(scheme) - {"X"}}
        assert len(r["rhyme_pairs"]) == sum(k * (k - 1) // 2 for k in groups.values())


def test_decode_applies_the_logits_processor_before_every_draw():
    from gan_writer.sampling import decode

    seen = []

    def only_token_7(drawn, logits):
        seen.append(drawn.size(1))
        out = torch.full_like(logits, float("-inf"))
        out[:, 7] = 0.0
        return out

    gen = tiny_gpt2(vocab=12, seed=0, n_positions=16).eval()
    logits, state = gen.encode(None, batch_size=3)
    ids = decode(gen.step, state, logits, 5, eos_token_id=2, pad_token_id=0, logits_processor=only_token_7)
    assert ids.tolist() == [[7] * 5] * 3 and seen == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("form_name", ["wujue", "wulv"])
def test_strict_rhyme_makes_even_lines_rhyme_under_any_model(form_name):
    form, _ = get_form(form_name)
    steps = max_tokens(form, 0)
    for seed in range(3):
        gen = tiny_gpt2(vocab=len(TOK_ZH), seed=seed, n_positions=steps).eval()
        proc = FormProcessor(form, TOK_ZH, gen.eos_token_id, strict_rhyme=True)
        ids = constrained_sample(gen, 8, steps, proc, seed=seed)
        for text in TOK_ZH.batch_decode(ids.tolist(), skip_special_tokens=True):
            r = form_report(text, form)
            assert r["line_ok"] and r["rhyme_ok"] and R.tone(r["rhyme_chars"][0])[0] in ("平", "中"), text


def test_english_rhyme_scheme_with_a_bpe_tokenizer():
    """Counting decoded words, not tokens: a byte-level BPE vocabulary (sub-word pieces) works too."""
    from gan_writer.tokenization import bpe_tokenizer

    tok = bpe_tokenizer([WORDS.replace(" \n", "\n")] * 20, vocab_size=400, min_frequency=2)
    form, scheme = get_form("quatrain", "ABAB")
    steps = max_tokens(form, 0)
    gen = tiny_gpt2(vocab=len(tok), seed=0, n_positions=steps).eval()
    proc = FormProcessor(form, tok, gen.eos_token_id, scheme, steps=steps)
    ids = constrained_sample(gen, 6, steps, proc, seed=0)
    for text in tok.batch_decode(ids.tolist(), skip_special_tokens=True):
        r = form_report(text, form, scheme)
        assert r["line_ok"] and r["rhyme_ok"], (text, r["rhyme_pairs"])


def test_format_report_reads_cleanly_with_and_without_a_rhyme():
    from gan_writer.writing.forms import format_report, form_report, get_form

    form, scheme = get_form("wujue")
    good = format_report(form_report("白日依山尽，黄河入海流。欲穷千里目，更上一层楼。", form, scheme))
    assert good.splitlines()[-1] == ("  lines ok; 平仄 1.00 (仄起首句不入韵); rhyme ok 流楼 十一尤; "
                                     "tones from {'pingshui': 20}")
    assert good.splitlines()[3] == "  4. 更上一层楼  5 chars  中仄仄平平"
    short = format_report(form_report("白日依山尽", form, scheme)).splitlines()[-1]
    assert "; rhyme no; " in short and "  ;" not in short and short == short.rstrip()


LONG_WORDS = WORDS + ("beautiful remembering everlasting melody of harmony , tenderly unforgettable "
                      "imagination ; the evening came again and then the rain \n")


@pytest.mark.parametrize("form_name,rhyme", [("quatrain", "ABAB"), ("sonnet", None)])
def test_english_lines_stay_within_their_syllables_plus_the_rhyme_word(form_name, rhyme):
    """A user trial saw 13/10 syllables in a quatrain: a long word could pass the line's target
    before the rhyme word was forced. Now only the rhyme word may go past it."""
    form, scheme, texts = english_drafts(LONG_WORDS, form_name, rhyme, 4)
    seen_long = 0
    for text in texts:
        r = form_report(text, form, scheme)
        assert r["line_ok"] and r["rhyme_ok"], text
        for line, target in zip(text.split("\n"), form.syllables):
            syl = [R.syllables(w)[0] for w in R.line_words(line)]
            seen_long += max(syl) >= 3
            assert sum(syl[:-1]) <= target, (line, syl)
    assert seen_long  # the long words were drawn


def test_split_clitics_typographic_apostrophes_and_accents(shared_data):
    """A user trial: Sonnet 18's "summer 's day" (the corpus's and the word tokenizer's spacing)
    counted 11 syllables, "rang 'd" ended on "d", "o’er" and "café" were cut at the mark."""
    from gan_writer.data import load_corpus

    sonnet18 = next(t for t in load_corpus("sonnets", data_dir=str(shared_data)).train
                    if t.startswith("shall i compare thee to a summer 's day"))
    first = form_report(sonnet18, "sonnet")["lines"][0]
    assert first["syllables"] == 10 and first["end_word"] == "day"
    assert R.line_words("do n't go , she said 'd") == ["don't", "go", "she", "said'd"]
    assert R.last_word("what's o’er") == "o’er" and R.line_words("a café at dawn") == ["a", "café", "at", "dawn"]
    assert R.syllables("café") == (2, True) and R.syllables("naïve") == (2, True)
    assert sum(R.syllables(w)[0] for w in R.line_words("shall i compare thee")) == 5


def test_rhymes_across_primary_and_secondary_stress_and_repeated_words():
    assert R.english_rhymes("dyed", "dignified") and R.english_rhymes("great", "precipitate")
    assert not R.english_rhymes("life", "life") and not R.english_rhymes("love", "move")
    r = form_report("a storm of strife\nthe way of life\nthe end of life\nthe gift of life", "quatrain", "AAAA")
    assert [p["rhyme"] for p in r["rhyme_pairs"]] == [True, True, False, True, False, False] and not r["rhyme_ok"]


@pytest.mark.parametrize("first", ["abcde", "白日依山\U0001f31e", "白日 依山"])  # the last: 4 characters
def test_a_chinese_verse_holds_chinese_characters_only(first):
    """A user trial: Latin letters or an emoji as a verse passed line_ok (and an emoji tone_ok)."""
    poem = f"{first}，黄河入海流。欲穷千里目，更上一层楼。"
    assert not form_report(poem, "wujue")["line_ok"]
    assert form_report("白日依山\U00020000，黄河入海流。欲穷千里目，更上一层楼。", "wujue")["line_ok"]  # extension B
