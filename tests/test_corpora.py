"""Every named corpus loads from ../shared/data with plausible sizes; options, user files,
errors and deterministic splits of gan_writer.data."""
import json
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gan_writer.data import (CorpusFormatError, CorpusNotFoundError, CorpusOptionError, CorpusSplits,
                             UnknownCorpusError, carve, corpus_options, list_corpora, load_corpus,
                             split_counts, split_samples)
from gan_writer.data.readers import is_cjk

NAMES = ["shi", "tang", "tangshi300", "sonnets", "english_poems", "shakespeare", "earnest", "grimm",
         "pride", "coco", "emnlp_test"]
VERSE = re.compile(r"[，。！？；：、]")


@pytest.fixture(scope="module")
def corpus(shared_data):
    """load_corpus with defaults, memoised per (name, options) for this module."""
    memo = {}

    def get(name, **options):
        key = (name, tuple(sorted(options.items())))
        if key not in memo:
            memo[key] = load_corpus(name, **options)
        return memo[key]
    return get


def everything(s: CorpusSplits):
    return s.train + s.valid + s.test


def test_list_corpora():
    corpora = list_corpora()
    assert list(corpora) == NAMES
    assert all(isinstance(d, str) and d and "\n" not in d for d in corpora.values())
    assert corpus_options("tang") == {"chars_per_line": None, "quatrains_only": True, "strip_notes": True}


@pytest.mark.parametrize("name", NAMES)
def test_every_corpus_loads(corpus, name):
    s = corpus(name)
    assert s.name == name and s.language in ("zh", "en")
    assert s.metric_tokenization == ("char" if s.language == "zh" else "word")
    assert s.files and all(isinstance(x, str) and x.strip() == x and x for x in everything(s))
    assert s.sizes == {"train": len(s.train), "valid": len(s.valid), "test": len(s.test)}


def test_shi(corpus):
    s = corpus("shi")
    assert sum(s.sizes.values()) == 16394 and s.language == "zh"
    assert s.sizes == {"train": 14754, "valid": 820, "test": 820}
    assert all(len(x) == 24 and " " not in x for x in everything(s))  # 20 chars + 4 punctuation
    assert "秦川雄帝宅，函谷壮皇居。绮殿千寻起，离宫百雉余。" in everything(s)
    spaced = everything(corpus("shi", keep_spaces=True))
    assert all(x == " ".join(x.replace(" ", "")) for x in spaced)
    assert sorted(x.replace(" ", "") for x in spaced) == sorted(everything(s))


@pytest.mark.parametrize("n", [5, 7])
def test_tang_quatrains(corpus, n):
    s = corpus("tang", chars_per_line=n)
    poems = everything(s)
    assert 3000 < len(poems) < 12000 and s.language == "zh"
    for poem in poems:
        verses = [v for v in VERSE.split(poem.replace("\n", "")) if v]
        assert len(verses) == 4 and all(len(v) == n and all(map(is_cjk, v)) for v in verses), poem


def test_tang_default_and_full(corpus):
    default = everything(corpus("tang"))
    assert len(default) == len(everything(corpus("tang", chars_per_line=5))) + len(
        everything(corpus("tang", chars_per_line=7)))
    assert "寒雨連天夜入湖，平明送客楚山孤。\n洛陽親友如相問，一片冰心在玉壺。" in default  # traditional kept
    full = corpus("tang", quatrains_only=False)
    assert 57000 < sum(full.sizes.values()) <= 57607
    assert not any("（一作" in p for p in everything(full))
    assert any("（一作" in p for p in everything(corpus("tang", quatrains_only=False, strip_notes=False)))


def test_tangshi300(corpus):
    s = corpus("tangshi300")
    assert sum(s.sizes.values()) == 366
    assert "前不見古人，後不見來者。\n念天地之悠悠，獨愴然而涕下。" in everything(s)


def test_sonnets_official_split(corpus):
    s = corpus("sonnets")
    assert s.sizes == {"train": 2685, "valid": 335, "test": 335}
    assert not any("<eos>" in x for x in everything(s))
    assert s.train[0].startswith("o night and death , to whom we grudged him then\nwhen in man 's sight")
    assert sum(x.count("\n") == 13 for x in s.train) > 0.9 * len(s.train)  # 14-line sonnets
    assert load_corpus("sonnets", seed=5).train == s.train  # seed does not touch official splits
    assert load_corpus("sonnets", line_separator=" <eos> ").train[0].count(" <eos> ") == 13


def test_english_poems(corpus):
    s = corpus("english_poems")
    assert sum(s.sizes.values()) == 19051
    assert sum("\n" in x for x in s.train) == len(s.train)


def test_shakespeare_turns_and_scenes(corpus):
    s = corpus("shakespeare")
    turns = everything(s)
    assert 6500 < len(turns) < 7300
    assert all(re.match(r"^[A-Za-z][^\n]*:\n\S", t) for t in turns)
    assert "First Citizen:\nBefore we proceed any further, hear me speak." in turns
    scenes = corpus("shakespeare", unit="scene")
    assert 300 < sum(scenes.sizes.values()) < 400
    assert all(x.count("\n\n") < 20 for x in everything(scenes))
    assert len(everything(corpus("shakespeare", unit="scene", turns_per_scene=5))) > 1400


def test_earnest(corpus):
    s = corpus("earnest")
    speeches = everything(s)
    assert 800 < len(speeches) < 950
    assert not any("Gutenberg" in x or "GUTENBERG" in x for x in speeches)
    assert all(re.match(r"^[A-Z][A-Za-z ]+\.  \S", x) for x in speeches)
    assert "Algernon.  Did you hear what I was playing, Lane?" in speeches
    acts = everything(corpus("earnest", unit="act"))
    assert len(acts) == 3 and not any("Gutenberg" in a for a in acts)


def test_grimm_tales(corpus):
    s = corpus("grimm")
    tales = everything(s)
    assert len(tales) == 62
    assert any(t.startswith("THE GOLDEN BIRD\nA certain king had a beautiful garden") for t in tales)
    assert not any("Gutenberg" in t or "Jacob (1785-1863)" in t for t in tales)
    assert all(not t.startswith("THE GOLDEN BIRD") for t in everything(corpus("grimm", include_title=False)))
    paragraphs = everything(corpus("grimm", unit="paragraph"))
    assert len(paragraphs) > 600 and not any(p.isupper() for p in paragraphs)


def test_pride_chapters(corpus):
    s = corpus("pride")
    chapters = everything(s)
    assert len(chapters) == 61
    assert any(c.startswith("It is a truth universally acknowledged, that a single man in possession\n"[:-1])
               for c in chapters)
    assert not any("Gutenberg" in c or re.search(r"^Chapter \d+$", c, re.M) for c in chapters)
    paragraphs = corpus("pride", unit="paragraph")
    assert sum(paragraphs.sizes.values()) > 1500


def test_coco_official_test_and_carved_valid(corpus):
    s = corpus("coco")
    # the files hold 10,000 captions each (wc -l says 9,999: no final newline)
    assert len(s.train) + len(s.valid) == 10000 and len(s.test) == 10000
    assert len(s.valid) == 500 and not set(s.valid) - set(load_corpus("coco", valid_fraction=0.0).train)
    assert s.test[0] == "a brown and white dog lays on a bed"
    other = load_corpus("coco", seed=1)
    assert other.test == s.test and other.valid != s.valid


def test_emnlp_is_reference_only(corpus):
    s = corpus("emnlp_test")
    assert s.train == [] and s.valid == [] and len(s.test) == 10000
    assert not any(x != x.strip() for x in s.test)


# ------------------------------------------------------------------ errors
def test_unknown_name_lists_registered():
    with pytest.raises(UnknownCorpusError) as info:
        load_corpus("shakespear")
    assert all(n in str(info.value) for n in NAMES) and "path" in str(info.value)
    with pytest.raises(CorpusNotFoundError, match="corpus file not found"):
        load_corpus("no/such/poems.txt")


def test_options_are_checked(shared_data):
    with pytest.raises(CorpusOptionError) as info:
        load_corpus("tang", char_per_line=5)
    assert "'char_per_line'" in str(info.value) and "chars_per_line" in str(info.value)
    with pytest.raises(CorpusOptionError, match=r"chars_per_line=6 .*5 or 7"):
        load_corpus("tang", chars_per_line=6)
    with pytest.raises(CorpusOptionError, match="unit='act'"):
        load_corpus("pride", unit="act")
    with pytest.raises(CorpusOptionError, match="int >= 1"):
        load_corpus("shakespeare", unit="scene", turns_per_scene=0)
    with pytest.raises(CorpusOptionError, match="valid options: none"):
        load_corpus("coco", unit="turn")
    with pytest.raises(CorpusOptionError, match="encoding"):
        load_corpus("shi", encoding="gbk")
    with pytest.raises(CorpusOptionError, match="language"):
        load_corpus("shi", language="en")
    with pytest.raises(ValueError, match="valid_fraction"):
        load_corpus("shi", valid_fraction=1.5)


# ------------------------------------------------------------------ user files
def test_user_files_and_directories(tmp_path):
    lines = tmp_path / "poems.txt"
    lines.write_text("\n".join(f"line number {i}" for i in range(100)) + "\n", encoding="utf-8")
    s = load_corpus(str(lines), seed=3)
    assert s.name == str(lines) and s.language == "en" and s.metric_tokenization == "word"
    assert s.sizes == {"train": 90, "valid": 5, "test": 5}
    zh = tmp_path / "zh.jsonl"
    zh.write_text("\n".join(json.dumps({"poem": "床前明月光" * (i + 1)}, ensure_ascii=False)
                            for i in range(20)), encoding="utf-8")
    s = load_corpus(zh, text_field="poem")
    assert s.language == "zh" and s.metric_tokenization == "char" and sum(s.sizes.values()) == 20
    assert load_corpus(zh, text_field="poem", language="en").metric_tokenization == "word"
    with pytest.raises(CorpusOptionError, match="strip_gutenberg"):
        load_corpus(str(lines), unit="turn")

    pooled = tmp_path / "pooled"
    (pooled / "b").mkdir(parents=True)
    (pooled / "a.txt").write_text("x1\nx2\n")
    (pooled / "b" / "c.txt").write_text("x3\n")
    (pooled / ".hidden.txt").write_text("secret\n")
    s = load_corpus(pooled, valid_fraction=0, test_fraction=0)
    assert sorted(s.train) == ["x1", "x2", "x3"] and len(s.files) == 2

    official = tmp_path / "official"
    official.mkdir()
    (official / "train.txt").write_text("\n".join(f"t{i}" for i in range(40)))
    (official / "test.txt").write_text("q1\nq2\n")
    s = load_corpus(official, valid_fraction=0.1)
    assert s.test == ["q1", "q2"] and len(s.valid) == 4 and len(s.train) == 36
    (official / "notes.txt").write_text("x\n")
    with pytest.raises(CorpusFormatError, match="notes.txt"):
        load_corpus(official)
    with pytest.raises(CorpusNotFoundError, match="no .txt/.jsonl/.json files"):
        load_corpus((tmp_path / "empty_dir").mkdir() or tmp_path / "empty_dir")


# ------------------------------------------------------------------ splits
def test_split_deterministic_and_disjoint(corpus):
    shi = everything(corpus("shi"))
    a = split_samples(shi, seed=0)
    assert a == split_samples(shi, seed=0)
    assert a != split_samples(shi, seed=1)
    shuffled = shi[:]
    random.Random(7).shuffle(shuffled)
    b = split_samples(shuffled, seed=0)
    assert [sorted(x) for x in a] == [sorted(x) for x in b]  # file order does not matter
    assert b == a  # not even the order within a split depends on the input order
    train, valid, test = a
    assert sorted(train + valid + test) == sorted(shi)
    assert load_corpus("shi", seed=0) == corpus("shi")


def test_tang_split_independent_of_file_order(corpus, monkeypatch):
    from gan_writer.data import corpora
    spec = corpora.CORPORA["tangshi300"]
    base = load_corpus("tangshi300")
    reordered = corpora._Spec(spec.description, spec.language, spec.files,
                              lambda paths, **kw: list(reversed(spec.load(paths, **kw))), spec.options)
    monkeypatch.setitem(corpora.CORPORA, "tangshi300", reordered)
    other = load_corpus("tangshi300")
    assert [sorted(x) for x in (other.train, other.valid, other.test)] == \
        [sorted(x) for x in (base.train, base.valid, base.test)]


def test_split_counts_edges():
    assert split_counts(100, 0.05, 0.05) == (90, 5, 5)
    assert split_counts(3, 0.05, 0.05) == (1, 1, 1)
    assert split_counts(2, 0.05, 0.05) == (2, 0, 0)
    assert split_counts(10, 0.0, 0.0) == (10, 0, 0)
    with pytest.raises(ValueError, match="< 1"):
        split_counts(10, 0.5, 0.5)
    with pytest.raises(ValueError, match="too few"):
        split_counts(4, 0.4, 0.4)
    rest, carved = carve([f"s{i}" for i in range(20)], 0.25, seed=2)
    assert len(carved) == 5 and len(rest) == 15 and not set(rest) & set(carved)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=8), max_size=60), st.integers(0, 2**31), st.sampled_from([0.0, 0.1, 0.2]),
       st.sampled_from([0.0, 0.1, 0.3]))
def test_split_property(samples, seed, vf, tf):
    train, valid, test = split_samples(samples, seed=seed, valid_fraction=vf, test_fraction=tf)
    assert sorted(train + valid + test) == sorted(samples)
    assert (len(train), len(valid), len(test)) == split_counts(len(samples), vf, tf)
    assert (train, valid, test) == split_samples(list(samples), seed=seed, valid_fraction=vf, test_fraction=tf)


def test_english_poems_as_line_chunks_are_split_by_poem(shared_data):
    poems = load_corpus("english_poems", data_dir=str(shared_data))
    chunks = load_corpus("english_poems", data_dir=str(shared_data), unit="lines", lines_per_sample=4)
    for whole, parts in ((poems.train, chunks.train), (poems.test, chunks.test)):
        expected = []
        for poem in whole:
            lines = [line for line in poem.split("\n") if line.strip()]
            expected += ["\n".join(lines[i:i + 4]) for i in range(0, len(lines), 4)]
        assert parts == expected  # every chunk comes from a poem of the same split
    assert all(1 <= len(c.split("\n")) <= 4 for c in chunks.train[:2000])
    with pytest.raises(CorpusOptionError, match="lines_per_sample=0 .*expected an int >= 1"):
        load_corpus("english_poems", data_dir=str(shared_data), unit="lines", lines_per_sample=0)
