"""Tokenizers: round trips on real corpora, the checkpoint serialisation, special tokens."""
import pytest

from gan_writer.tokenization import (
    NEWLINE, bpe_tokenizer, build_tokenizer, char_tokenizer, tokenizer_from_dict, tokenizer_to_dict, word_tokenizer,
)


@pytest.fixture(scope="module")
def shi_lines(shared_data):
    return (shared_data / "poetry_zh" / "shi.txt").read_text(encoding="utf-8").splitlines()[:2000]


@pytest.fixture(scope="module")
def coco_lines(shared_data):
    return (shared_data / "benchmarks" / "coco" / "train_coco.txt").read_text(encoding="utf-8").splitlines()[:2000]


def test_char_tokenizer_ignores_spaces_and_round_trips(shi_lines):
    tok = char_tokenizer(shi_lines)
    for line in shi_lines[:200]:
        spaced = tok(line, add_special_tokens=False).input_ids
        packed = tok(line.replace(" ", ""), add_special_tokens=False).input_ids
        assert spaced == packed
        assert len(spaced) == 24  # every shi line is 24 characters
        assert tok.decode(spaced) == line.replace(" ", "")
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    assert tok.decode([5, 6, tok.eos_token_id, tok.pad_token_id], skip_special_tokens=True) == tok.decode([5, 6])


def test_char_tokenizer_maps_unseen_characters_to_unk(shi_lines):
    tok = char_tokenizer(shi_lines)
    assert tok("鑫", add_special_tokens=False).input_ids == [tok.unk_token_id]


def test_word_tokenizer_texygen_convention(coco_lines):
    tok = word_tokenizer(coco_lines)
    ids = tok("A black Honda motorcycle, parked.", add_special_tokens=False).input_ids
    assert tok.convert_ids_to_tokens(ids) == ["a", "black", "honda", "motorcycle", ",", "parked", "."]
    for line in coco_lines[:300]:
        ids = tok(line, add_special_tokens=False).input_ids
        assert tok.decode(ids).split() == tok.convert_ids_to_tokens(ids)
    cased = word_tokenizer(coco_lines, lowercase=False)
    assert "A" not in tok.get_vocab() and tok.convert_ids_to_tokens(cased("Honda", add_special_tokens=False).input_ids) != ["honda"]


def test_word_tokenizer_keeps_line_breaks():
    tok = word_tokenizer(["shall i compare thee\nto a summer's day"])
    ids = tok("shall i compare thee\nto a summer's day", add_special_tokens=False).input_ids
    assert NEWLINE in tok.convert_ids_to_tokens(ids)
    assert tok.decode(ids).splitlines()[0].strip() == "shall i compare thee"


def test_word_tokenizer_lines_after_a_break_start_without_a_space(shared_data):
    """A sonnet read line by line decodes to its own lines: no leading space after each ``␤``."""
    text = (shared_data / "poetry_en" / "sonnets" / "sonnet_valid.txt").read_text(encoding="utf-8").splitlines()[0]
    lines = [ln.strip() for ln in text.split("<eos>") if ln.strip()][:14]
    poem = "\n".join(lines)
    tok = word_tokenizer([poem])
    decoded = tok.decode(tok(poem, add_special_tokens=False).input_ids)
    words = [" ".join(tok.convert_ids_to_tokens(tok(ln, add_special_tokens=False).input_ids)) for ln in lines]
    assert decoded.split("\n") == words and words[1] == "once reigned o ' er happy realms of long ago"
    assert tok.decode(tok(f"\n{lines[0]}\n", add_special_tokens=False).input_ids) == f"\n{lines[0]}\n"


def test_word_tokenizer_from_an_older_checkpoint_decodes_the_new_way():
    """Checkpoints saved with the old decoder (``" ␤"`` → line break, next word keeping its space)
    are read back with today's decoder."""
    from tokenizers import decoders

    tok = word_tokenizer(["shall i compare thee\nto a summer's day"])
    tok.backend_tokenizer.decoder = decoders.Sequence(
        [decoders.WordPiece(prefix="\x00##", cleanup=False), decoders.Replace(f" {NEWLINE}", "\n")])
    ids = tok("shall i compare thee\nto a summer's day", add_special_tokens=False).input_ids
    assert tok.decode(ids) == "shall i compare thee\n to a summer ' s day"
    assert tokenizer_from_dict(tokenizer_to_dict(tok)).decode(ids) == "shall i compare thee\nto a summer ' s day"


def test_bpe_round_trips_exactly(coco_lines):
    tok = bpe_tokenizer(coco_lines, vocab_size=600)
    assert 300 < len(tok) <= 600
    for line in coco_lines[:300]:
        assert tok.decode(tok(line, add_special_tokens=False).input_ids) == line


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_checkpoint_serialisation_round_trip(kind, coco_lines):
    tok = build_tokenizer(kind, coco_lines, vocab_size=500)
    again = tokenizer_from_dict(tokenizer_to_dict(tok))
    for line in coco_lines[:50]:
        assert again(line, add_special_tokens=False).input_ids == tok(line, add_special_tokens=False).input_ids
    assert (again.pad_token_id, again.bos_token_id, again.eos_token_id) == (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id)
    assert len(again) == len(tok)


def test_builtin_kind_without_texts_is_an_error():
    with pytest.raises(ValueError, match="training texts"):
        build_tokenizer("char", [])


@pytest.mark.parametrize("kind, meant", [("wordz", "word"), ("Char", "char"), ("bpee", "bpe")])
def test_a_misspelled_builtin_kind_is_refused_without_the_network(kind, meant, monkeypatch):
    """As a hub name it used to spend ~50 s on retries; now refused at once, the kind suggested."""
    import transformers

    def no_hub(*args, **kwargs):
        raise AssertionError("the hub was asked")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", no_hub)
    with pytest.raises(ValueError, match=f"data.tokenizer='{kind}' is not a tokenizer: did you mean '{meant}'"):
        build_tokenizer(kind, ["some text"])


def test_a_local_folder_named_like_a_kind_is_still_loaded(tmp_path, monkeypatch, coco_lines):
    folder = tmp_path / "words"
    word_tokenizer(coco_lines[:50]).save_pretrained(folder)
    monkeypatch.chdir(tmp_path)
    tok = build_tokenizer("words", coco_lines[:5])
    assert tok.decode(tok("a man on a horse", add_special_tokens=False).input_ids) == "a man on a horse"
