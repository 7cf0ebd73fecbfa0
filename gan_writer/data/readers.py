"""File formats for corpora: decoding, Gutenberg stripping, and parsers, with clear errors.

Every reader takes the text of one file and returns samples (one ``str`` per sample).
Decoding (:func:`read_text`) accepts UTF-8 with or without a byte-order mark and any
codec Python knows (``encoding="latin-1"``, ``"gbk"``, ...); line ends (CRLF, CR) are
normalised to ``"\\n"``. Bad input raises a :class:`CorpusError` subclass whose message
names the file, the line (or key) and what to do about it.

Formats (``format=`` of :func:`read_samples` / ``load_corpus``):

* ``"lines"``: one sample per non-blank line, surrounding whitespace stripped.
* ``"blocks"``: blank-line-separated blocks; a sample keeps its ``"\\n"`` line breaks.
* ``"paragraphs"``: like blocks, but hard-wrapped prose lines are joined with a space
  (indented lines, e.g. verse inside a story, keep their own line). For Gutenberg books.
* ``"fortune"``: the BSD ``fortune`` database format: entries separated by lines holding
  only ``%`` (or ``%%``); an entry keeps its line breaks. Terminal escape sequences are
  removed (as from every corpus, see :mod:`gan_writer.data.clean`).
* ``"jsonl"``: one JSON object per line; the sample is the text under ``text_field``.
* ``"json"`` (alias ``"chinese-poetry"``): a JSON list whose items are strings, objects
  with ``paragraphs`` (the chinese-poetry format: joined with ``"\\n"``), or objects
  with ``text_field``.

``text_field`` (json/jsonl) names one key, or a list of keys whose texts are joined with
``"\\n"`` in that order (e.g. ``["title", "content"]``); a key holding a list of strings
(the lines of a poem) is joined with ``"\\n"``.
"""
from __future__ import annotations

import codecs
import json
import re
import warnings
from pathlib import Path

__all__ = [
    "CorpusError", "CorpusNotFoundError", "CorpusFormatError", "CorpusDecodeError",
    "EmptyCorpusError", "FORMATS", "read_text", "strip_gutenberg", "parse_lines",
    "parse_blocks", "parse_paragraphs", "parse_jsonl", "parse_json", "parse_chinese_poetry",
    "poem_text", "unwrap_paragraph", "infer_format", "read_samples", "require_samples",
    "detect_language", "is_cjk", "parse_fortune", "looks_like_fortune", "text_fields",
]


class CorpusError(Exception):
    """Base class of every corpus error raised by ``gan_writer.data``."""


class CorpusNotFoundError(CorpusError, FileNotFoundError):
    """A corpus file or directory does not exist (the message says where it looked)."""


class CorpusFormatError(CorpusError, ValueError):
    """A file's content does not fit its format (the message names the file and line/key)."""


class CorpusDecodeError(CorpusFormatError):
    """A file's bytes are not valid in the requested encoding (names line and byte offset)."""


class EmptyCorpusError(CorpusFormatError):
    """A file (or a whole corpus) yields no samples: empty, all blank, or filtered out."""


FORMATS = ("lines", "blocks", "paragraphs", "fortune", "jsonl", "json")
_FORMAT_ALIASES = {"chinese-poetry": "json", "txt": "lines", "ndjson": "jsonl"}
_SUFFIX_FORMAT = {".txt": "lines", ".text": "lines", ".jsonl": "jsonl", ".ndjson": "jsonl",
                  ".json": "json"}
_ENCODING_HINT = ("pass the file's encoding, e.g. encoding='latin-1' (Western European), "
                  "encoding='cp1252' (Windows) or encoding='gbk' (simplified Chinese); "
                  "on the command line: --data.init_args.encoding=gbk")


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise CorpusNotFoundError(
            f"corpus file not found: {path} (resolved from the current directory {Path.cwd()}). "
            "Check the path, or pass a registered corpus name (see gan_writer.data.list_corpora()).")
    if path.is_dir():
        raise CorpusFormatError(f"{path} is a directory; pass a file, or load the directory "
                                "itself with load_corpus(directory)")
    data = path.read_bytes()
    if not data:
        raise EmptyCorpusError(f"{path} is empty (0 bytes): put at least one sample in it, "
                               "or point to the right file")
    return data


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """Read and decode a corpus file.

    Args:
        path: the file.
        encoding: a Python codec name. ``"utf-8"`` (default) also accepts a UTF-8
            byte-order mark, which is removed.
    Returns:
        The text, with CRLF / CR line ends turned into ``"\\n"`` and no BOM.
    Raises:
        CorpusNotFoundError: the file does not exist.
        EmptyCorpusError: the file has 0 bytes.
        CorpusDecodeError: undecodable bytes; the message names the line, the byte offset
            and suggests ``encoding=``.
        CorpusFormatError: unknown codec name, or a directory was given.
    """
    path = Path(path)
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise CorpusFormatError(f"unknown encoding {encoding!r} for {path}: use a Python codec "
                                "name such as 'utf-8', 'latin-1', 'cp1252' or 'gbk'") from None
    data = _read_bytes(path)
    skip = 0
    if codec == "utf-8":
        if data.startswith(codecs.BOM_UTF8):
            skip = len(codecs.BOM_UTF8)
        elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise CorpusDecodeError(f"{path} starts with a UTF-16 byte-order mark: "
                                    "pass encoding='utf-16'")
    try:
        text = data[skip:].decode(encoding)
    except UnicodeDecodeError as err:
        offset = skip + err.start
        line = data.count(b"\n", 0, offset) + 1
        column = offset - (data.rfind(b"\n", 0, offset) + 1)
        raise CorpusDecodeError(
            f"{path}: line {line}, byte offset {offset} (byte {column} of that line): "
            f"byte 0x{data[offset]:02x} cannot be decoded as {encoding} ({err.reason}). "
            f"The file is probably in another encoding: {_ENCODING_HINT}.") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


_GB_START = re.compile(r"^\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG.*$", re.I | re.M)
_GB_END = re.compile(r"^\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG.*$", re.I | re.M)
_GB_END_LINE = re.compile(r"^\s*End of (?:the )?Project Gutenberg.*$", re.I | re.M)
_GB_CREDITS = re.compile(r"^(?:Produced by|Transcribed from|E-?text prepared by|This e-?text was)",
                         re.I)


def strip_gutenberg(text: str) -> str:
    """Remove a Project Gutenberg header, footer and licence, if present.

    Keeps what lies between the ``*** START OF THE/THIS PROJECT GUTENBERG EBOOK ... ***``
    and ``*** END OF ...`` marker lines, drops an ``End of the Project Gutenberg EBook``
    line before the end marker and a leading credits paragraph ("Produced by ...",
    "Transcribed from ..."). Text without markers is returned unchanged.
    """
    start, end = _GB_START.search(text), _GB_END.search(text)
    if start is None and end is None:
        return text
    lo = start.end() if start else 0
    hi = end.start() if end and end.start() >= lo else len(text)
    body = text[lo:hi]
    tail = _GB_END_LINE.search(body)
    if tail:
        body = body[:tail.start()]
    blocks = re.split(r"\n\s*\n", body.strip("\n"), maxsplit=1)
    if len(blocks) == 2 and _GB_CREDITS.match(blocks[0].strip()):
        body = blocks[1]
    return body.strip("\n") + "\n"


def _blocks(text: str) -> list[str]:
    """Blank-line-separated blocks, each line right-stripped."""
    out, cur = [], []
    for line in text.split("\n"):
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            out.append("\n".join(cur))
            cur = []
    if cur:
        out.append("\n".join(cur))
    return out


def parse_lines(text: str) -> list[str]:
    """One sample per non-blank line (stripped)."""
    return [s for s in (line.strip() for line in text.split("\n")) if s]


def parse_blocks(text: str) -> list[str]:
    """One sample per blank-line-separated block, line breaks kept, lines right-stripped."""
    return _blocks(text)


def unwrap_paragraph(block: str) -> str:
    """Join the hard-wrapped lines of a prose paragraph with single spaces.

    Lines that start with whitespace (verse quoted in a story) keep a line of their own,
    without the indentation. Returns the paragraph as one string.
    """
    segments: list[str] = []
    prev_indented = True
    for line in block.split("\n"):
        indented = line[:1].isspace()
        if indented or prev_indented or not segments:
            segments.append(line.strip())
        else:
            segments[-1] += " " + line.strip()
        prev_indented = indented
    return "\n".join(s for s in segments if s)


def parse_paragraphs(text: str) -> list[str]:
    """One sample per blank-line-separated paragraph, wrapped lines joined (see
    :func:`unwrap_paragraph`)."""
    return [unwrap_paragraph(b) for b in _blocks(text)]


_FORTUNE_SEP = re.compile(r"^%%?[ \t]*$", re.M)


def parse_fortune(text: str) -> list[str]:
    """One sample per ``fortune`` entry: the text between lines holding only ``%`` (or
    ``%%``), line breaks kept, lines right-stripped, blank entries skipped."""
    return [b for part in _FORTUNE_SEP.split(text)
            if (b := "\n".join(line.rstrip() for line in part.strip("\n").split("\n")).strip("\n")).strip()]


def looks_like_fortune(text: str) -> bool:
    """True when at least two lines hold only ``%``: a fortune file read as another format."""
    return len(_FORTUNE_SEP.findall(text)) >= 2


def _json_error(source: object, err: json.JSONDecodeError, line: int | None = None) -> CorpusFormatError:
    where = f"line {line}, column {err.colno}" if line else f"line {err.lineno}, column {err.colno}"
    return CorpusFormatError(f"{source}: {where}: invalid JSON ({err.msg}). Fix that line, or pass "
                             "format='lines' if the file is plain text.")


def _is_lines(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _kind(value: object) -> str:
    if isinstance(value, str):
        return "a string"
    if _is_lines(value):
        return f"a list of {len(value)} strings"
    return f"a {type(value).__name__}"


def text_fields(text_field: str | list[str] | tuple[str, ...]) -> list[str]:
    """``text_field`` as a non-empty list of key names; CorpusFormatError otherwise."""
    fields = [text_field] if isinstance(text_field, str) else list(text_field or [])
    if not fields or not all(isinstance(f, str) and f for f in fields):
        raise CorpusFormatError(f"text_field must be a key name or a list of key names, got {text_field!r}")
    return fields


def _text_of(obj: object, source: object, where: str, text_field) -> str:
    fields = text_fields(text_field)
    if not isinstance(obj, dict):
        raise CorpusFormatError(f"{source}: {where}: expected a JSON object with the key(s) "
                                f"{', '.join(map(repr, fields))}, got {type(obj).__name__}")
    parts = []
    for key in fields:
        if key not in obj:
            keys = ", ".join(map(repr, obj)) or "none"
            texty = [f"{k!r} ({_kind(v)})" for k, v in obj.items() if isinstance(v, str) or _is_lines(v)]
            cands = (f"; keys holding text: {', '.join(texty)}" if texty else "; no key holds text")
            raise CorpusFormatError(
                f"{source}: {where}: no key {key!r} (keys: {keys}){cands}. Pass text_field= "
                "(data.init_args.text_field in a config) naming the key that holds the text, or a list "
                "of keys joined in order, e.g. [title, content]")
        value = obj[key]
        if _is_lines(value):  # the lines of a poem: one per line
            value = "\n".join(v.strip() for v in value if v.strip())
        elif not isinstance(value, str):
            raise CorpusFormatError(f"{source}: {where}: key {key!r} holds {_kind(value)}, expected a "
                                    "string or a list of strings")
        if value.strip():
            parts.append(value.strip())
    return "\n".join(parts)


def parse_jsonl(text: str, text_field: str | list[str] = "text", source: object = "<jsonl>") -> list[str]:
    """Samples from JSON lines: the string under ``text_field`` of each object.

    Blank lines and blank texts are skipped; the text is stripped at both ends (inner
    ``"\\n"`` kept). ``text_field``: a key or a list of keys (texts joined with ``"\\n"``);
    a list of strings under a key is joined with ``"\\n"``. Raises CorpusFormatError naming
    the line for invalid JSON, a non-object, a missing key (listing the keys present and
    those holding text) or a value that is neither a string nor a list of strings.
    """
    out = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise _json_error(source, err, lineno) from None
        value = _text_of(obj, source, f"line {lineno}", text_field).strip()
        if value:
            out.append(value)
    return out


def _load_json(text: str, source: object) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise _json_error(source, err) from None


def parse_chinese_poetry(text: str, source: object = "<json>") -> list[dict]:
    """Poems from a chinese-poetry JSON file: a list of objects with ``paragraphs``
    (list of str) and usually ``author``, ``title``, ``id``, ``tags``.

    Raises CorpusFormatError naming the line/column of invalid JSON, or the item index
    (and its title) and the key that is missing or of the wrong type.
    """
    data = _load_json(text, source)
    if not isinstance(data, list):
        raise CorpusFormatError(f"{source}: expected a JSON list of poems, got {type(data).__name__}")
    for i, poem in enumerate(data):
        if not isinstance(poem, dict) or "paragraphs" not in poem:
            raise CorpusFormatError(f"{source}: item {i}: no key 'paragraphs' (the chinese-poetry "
                                    "format is a list of {\"title\", \"author\", \"paragraphs\": [...]})")
        paras = poem["paragraphs"]
        if not isinstance(paras, list) or not all(isinstance(p, str) for p in paras):
            raise CorpusFormatError(f"{source}: item {i} ({poem.get('title', '?')}): key 'paragraphs' "
                                    "must be a list of strings")
    return data


def poem_text(poem: dict) -> str:
    """A chinese-poetry poem as one string: its non-blank paragraphs joined with ``"\\n"``."""
    return "\n".join(p.strip() for p in poem["paragraphs"] if p.strip())


def parse_json(text: str, text_field: str | list[str] = "text", source: object = "<json>") -> list[str]:
    """Samples from a JSON list of strings, chinese-poetry poems or objects with ``text_field``."""
    data = _load_json(text, source)
    if not isinstance(data, list):
        raise CorpusFormatError(f"{source}: expected a JSON list (of strings, of chinese-poetry "
                                f"poems or of objects with {text_field!r}), got {type(data).__name__}")
    out = []
    for i, item in enumerate(data):
        if isinstance(item, str):
            value = item
        elif isinstance(item, dict) and "paragraphs" in item and not set(text_fields(text_field)) & set(item):
            paras = item["paragraphs"]
            if not isinstance(paras, list) or not all(isinstance(p, str) for p in paras):
                raise CorpusFormatError(f"{source}: item {i}: key 'paragraphs' must be a list of strings")
            value = poem_text(item)
        else:
            value = _text_of(item, source, f"item {i}", text_field)
        if value.strip():
            out.append(value.strip())
    return out


def infer_format(path: str | Path) -> str:
    """Format name from a file extension: .txt → lines, .jsonl → jsonl, .json → json.

    Raises CorpusFormatError for other extensions, asking for ``format=``.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIX_FORMAT:
        raise CorpusFormatError(f"cannot infer the format of {path} from its extension "
                                f"{suffix or '(none)'!r}: pass format= one of {', '.join(FORMATS)}")
    return _SUFFIX_FORMAT[suffix]


def normalize_format(fmt: str) -> str:
    """Canonical format name (aliases resolved); CorpusFormatError if unknown."""
    fmt = _FORMAT_ALIASES.get(fmt, fmt)
    if fmt not in FORMATS:
        raise CorpusFormatError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)} "
                                "(or 'chinese-poetry' for json)")
    return fmt


def require_samples(samples: list[str], source: object, what: str = "") -> list[str]:
    """Return ``samples`` or raise EmptyCorpusError saying the source yields none."""
    if not samples:
        raise EmptyCorpusError(f"{source} contains no samples{what}: it is empty or all blank. "
                               "Put at least one non-blank sample in it, or check format=/text_field=.")
    return samples


def read_samples(path: str | Path, format: str | None = None, *, text_field: str | list[str] = "text",
                 encoding: str = "utf-8", strip_gutenberg_text: bool | None = None) -> list[str]:
    """Read the samples of one user file.

    Args:
        path: the file.
        format: one of :data:`FORMATS` (aliases: ``chinese-poetry``); None infers it from
            the extension (:func:`infer_format`).
        text_field: key of the text in ``jsonl`` / ``json`` objects, or a list of keys.
        encoding: see :func:`read_text`.
        strip_gutenberg_text: for text formats, True/None strip a Gutenberg header and
            footer when the markers are present (None = auto = True); False keeps them.
    Returns:
        A non-empty list of samples.
    Raises:
        CorpusNotFoundError, CorpusDecodeError, CorpusFormatError, EmptyCorpusError.
    """
    path = Path(path)
    fmt = normalize_format(format) if format else infer_format(path)
    text = read_text(path, encoding)
    if fmt == "jsonl":
        samples = parse_jsonl(text, text_field, path)
    elif fmt == "json":
        samples = parse_json(text, text_field, path)
    else:
        if strip_gutenberg_text is not False:
            text = strip_gutenberg(text)
        if fmt != "fortune" and looks_like_fortune(text):
            warnings.warn(f"{path} has lines holding only '%': it looks like a fortune file, whose '%' lines "
                          f"separate entries, read as {fmt!r} (the '%' lines become text). Read it with "
                          "format='fortune' (data.init_args.format: fortune)", stacklevel=2)
        parse = {"lines": parse_lines, "blocks": parse_blocks, "paragraphs": parse_paragraphs,
                 "fortune": parse_fortune}[fmt]
        samples = parse(text)
    return require_samples(samples, path, f" (format {fmt!r})")


def is_cjk(ch: str) -> bool:
    """True for a CJK unified / compatibility ideograph (BMP and supplementary planes)."""
    o = ord(ch)
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF
            or 0x20000 <= o <= 0x3134F)


def detect_language(samples: list[str], limit: int = 500) -> str:
    """``"zh"`` when CJK ideographs outnumber Latin letters in the first ``limit`` samples,
    else ``"en"``."""
    cjk = latin = 0
    for s in samples[:limit]:
        for ch in s:
            if is_cjk(ch):
                cjk += 1
            elif ch.isascii() and ch.isalpha():
                latin += 1
    return "zh" if cjk > latin else "en"
