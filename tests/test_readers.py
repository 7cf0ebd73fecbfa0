"""File formats, encodings, Gutenberg stripping and the error messages of gan_writer.data.readers."""
import json

import pytest

from gan_writer.data import load_corpus
from gan_writer.data.readers import (CorpusDecodeError, CorpusFormatError, CorpusNotFoundError,
                                     EmptyCorpusError, detect_language, infer_format, parse_blocks,
                                     parse_chinese_poetry, parse_jsonl, parse_lines, parse_paragraphs,
                                     read_samples, read_text, strip_gutenberg, unwrap_paragraph)


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


# ------------------------------------------------------------------ formats
def test_lines_skip_blank_and_strip():
    assert parse_lines("  a b \n\n\t\nc\n") == ["a b", "c"]


def test_blocks_keep_line_breaks():
    text = "roses are red\nviolets are blue  \n\n\n\nsecond\npoem\n"
    assert parse_blocks(text) == ["roses are red\nviolets are blue", "second\npoem"]


def test_paragraphs_unwrap_prose_keep_verse():
    block = "It was a fine\nday, said he.\n ‘Sing a song,\n  of sixpence!’\nThen he left."
    assert unwrap_paragraph(block) == "It was a fine day, said he.\n‘Sing a song,\nof sixpence!’\nThen he left."
    assert parse_paragraphs("a\nb\n\nc\n") == ["a b", "c"]


def test_jsonl_text_field(tmp_path):
    rows = [{"body": "first\nline", "id": 1}, {"body": "second", "id": 2}, {"body": "  ", "id": 3}]
    path = write(tmp_path, "c.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert read_samples(path, text_field="body") == ["first\nline", "second"]


def test_chinese_poetry_json(tmp_path):
    poems = [{"author": "李白", "title": "靜夜思", "paragraphs": ["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"]}]
    path = write(tmp_path, "p.json", json.dumps(poems, ensure_ascii=False))
    assert read_samples(path) == ["床前明月光，疑是地上霜。\n舉頭望明月，低頭思故鄉。"]
    assert read_samples(path, format="chinese-poetry") == read_samples(path)
    assert parse_chinese_poetry(path.read_text("utf-8"))[0]["author"] == "李白"


def test_json_list_of_strings_and_objects(tmp_path):
    path = write(tmp_path, "s.json", json.dumps(["one", {"text": "two"}, ""]))
    assert read_samples(path) == ["one", "two"]


def test_format_inference_and_override(tmp_path):
    assert infer_format("a.txt") == "lines" and infer_format("a.JSONL") == "jsonl"
    assert infer_format("x/y.json") == "json"
    with pytest.raises(CorpusFormatError, match=r"format="):
        infer_format("data.csv")
    path = write(tmp_path, "poems.txt", "a\nb\n\nc\n")
    assert read_samples(path, format="blocks") == ["a\nb", "c"]
    with pytest.raises(CorpusFormatError, match="unknown format 'csv'"):
        read_samples(path, format="csv")


# ------------------------------------------------------------------ encodings
def test_utf8_bom_and_crlf(tmp_path):
    path = write(tmp_path, "bom.txt", b"\xef\xbb\xbfhello\r\nworld\r\n\r\nold mac\rend\r\n")
    assert read_text(path) == "hello\nworld\n\nold mac\nend\n"
    assert read_samples(path) == ["hello", "world", "old mac", "end"]
    assert read_samples(path, format="blocks") == ["hello\nworld", "old mac\nend"]


@pytest.mark.parametrize("encoding,text", [("latin-1", "café crème\nnaïve façade\n"),
                                           ("gbk", "床前明月光\n疑是地上霜\n")])
def test_other_encodings(tmp_path, encoding, text):
    path = write(tmp_path, "x.txt", text.encode(encoding))
    with pytest.raises(CorpusDecodeError):
        read_samples(path)
    assert read_samples(path, encoding=encoding) == text.strip().split("\n")


def test_undecodable_names_line_offset_and_encoding(tmp_path):
    data = "line one\nline two\nbad: café\n".encode("latin-1")
    path = write(tmp_path, "bad.txt", data)
    offset = data.index(b"\xe9")
    with pytest.raises(CorpusDecodeError) as info:
        read_samples(path)
    msg = str(info.value)
    assert str(path) in msg and "line 3" in msg and f"byte offset {offset}" in msg
    assert "0xe9" in msg and "encoding=" in msg
    assert isinstance(info.value, ValueError)


def test_undecodable_after_bom_counts_bom_bytes(tmp_path):
    path = write(tmp_path, "b.txt", b"\xef\xbb\xbfok\n\xff\n")
    with pytest.raises(CorpusDecodeError, match=r"line 2, byte offset 6 \(byte 0 of that line\)"):
        read_text(path)


def test_unknown_encoding_and_utf16_bom(tmp_path):
    path = write(tmp_path, "x.txt", "hi\n")
    with pytest.raises(CorpusFormatError, match="unknown encoding 'klingon'"):
        read_text(path, "klingon")
    path16 = write(tmp_path, "w.txt", "hi\n".encode("utf-16"))
    with pytest.raises(CorpusDecodeError, match="encoding='utf-16'"):
        read_text(path16)
    assert read_samples(path16, encoding="utf-16") == ["hi"]


# ------------------------------------------------------------------ bad input
def test_missing_file_message(tmp_path):
    missing = tmp_path / "nope" / "poems.txt"
    with pytest.raises(CorpusNotFoundError) as info:
        read_samples(missing)
    assert str(missing) in str(info.value) and "Check the path" in str(info.value)
    with pytest.raises(FileNotFoundError, match="registered corpus"):
        load_corpus(str(missing))


@pytest.mark.parametrize("content,fmt", [(b"", None), (b"\n  \n\t\n", None), (b"\r\n\r\n", "blocks"),
                                         (b'{"text": ""}\n\n', "jsonl"), (b"[]", "json")])
def test_empty_or_blank_corpus(tmp_path, content, fmt):
    path = write(tmp_path, "empty.txt", content)
    with pytest.raises(EmptyCorpusError, match="empty") as info:
        read_samples(path, fmt)
    assert str(path) in str(info.value)
    with pytest.raises(EmptyCorpusError):
        load_corpus(str(path), format=fmt)


def test_jsonl_missing_key_names_line_and_key(tmp_path):
    path = write(tmp_path, "c.jsonl", '{"text": "ok"}\n{"body": "no text key", "author": "x"}\n')
    with pytest.raises(CorpusFormatError) as info:
        read_samples(path)
    msg = str(info.value)
    assert str(path) in msg and "line 2" in msg and "'text'" in msg and "text_field=" in msg
    assert "'body'" in msg


def test_jsonl_invalid_json_names_line(tmp_path):
    path = write(tmp_path, "c.jsonl", '{"text": "ok"}\n\n{"text": "broken\n')
    with pytest.raises(CorpusFormatError, match=r"line 3, column \d+: invalid JSON"):
        read_samples(path)


def test_jsonl_wrong_types(tmp_path):
    with pytest.raises(CorpusFormatError, match="line 1: expected a JSON object"):
        parse_jsonl('["a"]\n', source="f.jsonl")
    with pytest.raises(CorpusFormatError, match="line 1: key 'text' holds a int"):
        parse_jsonl('{"text": 3}\n', source="f.jsonl")


def test_json_errors_name_line_or_item(tmp_path):
    path = write(tmp_path, "p.json", '[\n {"paragraphs": ["a"]},\n {"paragraphs": [}\n]')
    with pytest.raises(CorpusFormatError, match=r"line 3, column \d+: invalid JSON"):
        read_samples(path)
    with pytest.raises(CorpusFormatError, match="item 1: no key 'paragraphs'"):
        parse_chinese_poetry('[{"paragraphs": ["a"]}, {"title": "t"}]', "p.json")
    with pytest.raises(CorpusFormatError, match="must be a list of strings"):
        parse_chinese_poetry('[{"paragraphs": "a"}]', "p.json")
    with pytest.raises(CorpusFormatError, match="expected a JSON list"):
        read_samples(write(tmp_path, "d.json", '{"a": 1}'))


def test_directory_given_as_file(tmp_path):
    with pytest.raises(CorpusFormatError, match="is a directory"):
        read_text(tmp_path)


# ------------------------------------------------------------------ Gutenberg, language
GUTENBERG = """\ufeffThe Project Gutenberg EBook of Tales, by Someone\r
\r
This eBook is for the use of anyone anywhere\r
\r
*** START OF THIS PROJECT GUTENBERG EBOOK TALES ***\r
\r
Produced by Volunteers\r
\r
First paragraph of the\r
story.\r
\r
Second paragraph.\r
\r
End of the Project Gutenberg EBook of Tales\r
\r
*** END OF THIS PROJECT GUTENBERG EBOOK TALES ***\r
\r
Project Gutenberg licence text...\r
"""


def test_strip_gutenberg_user_file(tmp_path):
    path = write(tmp_path, "tales.txt", GUTENBERG)
    samples = read_samples(path, format="paragraphs")
    assert samples == ["First paragraph of the story.", "Second paragraph."]
    assert not any("Gutenberg" in s for s in read_samples(path))
    kept = read_samples(path, strip_gutenberg_text=False)
    assert any("Gutenberg" in s for s in kept)
    assert load_corpus(str(path), format="paragraphs", valid_fraction=0, test_fraction=0).train == samples


def test_strip_gutenberg_without_markers_is_identity():
    assert strip_gutenberg("just text\n\nmore\n") == "just text\n\nmore\n"


def test_detect_language():
    assert detect_language(["床前明月光，疑是地上霜。"]) == "zh"
    assert detect_language(["the quick brown fox", "a 床"]) == "en"
