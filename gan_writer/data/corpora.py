"""Named corpora and :func:`load_corpus` (registered names or user files/directories).

Source URLs and sha256 of every file are in ``registry.json`` (generated from
``../shared/data``, see its README.md). Sample conventions (each sample is one ``str``):

* Chinese (``shi``, ``tang``, ``tangshi300``; language ``"zh"``, metrics by character):
  characters and punctuation as in the file. ``shi``'s spaces between characters are
  removed (``keep_spaces=True`` keeps them); the tokenizer ignores whitespace for Chinese.
  chinese-poetry poems are their ``paragraphs`` joined with ``"\\n"`` (traditional
  characters kept).
* English (language ``"en"``, metrics by word): poems and plays keep ``"\\n"`` line
  breaks; the sonnets' `` <eos> `` line separator becomes ``"\\n"``; hard-wrapped
  Gutenberg prose is unwrapped into one line per paragraph, paragraphs joined by ``"\\n"``.

Splits: ``sonnets`` keeps its train/valid/test files; ``coco`` keeps its train/test and
carves valid from train (``valid_fraction`` of train); ``emnlp_test`` is a *reference set*
only (test = its 10,000 sentences, train and valid empty). Every other corpus is split by
:func:`gan_writer.data.split.split_samples` with ``seed`` (file order does not matter).
Official splits keep their file order; seeded and carved splits come in a seeded
pseudo-random order, so ``train[:n]`` is a random subset.
"""
from __future__ import annotations

import dataclasses

import json
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from . import readers as R
from .clean import clean_samples
from .fetch import DownloadError, resolve_file
from .readers import CorpusError, CorpusFormatError, CorpusNotFoundError
from .split import carve, split_samples

__all__ = ["CorpusSplits", "UnknownCorpusError", "CorpusOptionError", "list_corpora",
           "corpus_options", "corpus_files", "fetch_corpus", "load_corpus", "registry", "looks_like_path"]


class UnknownCorpusError(CorpusError, ValueError):
    """A name that is neither a registered corpus nor an existing path."""


class CorpusOptionError(CorpusError, TypeError):
    """An unknown corpus option, or an invalid value for one."""


@dataclass(frozen=True)
class CorpusSplits:
    """The samples of a corpus, split. ``train``/``valid``/``test``: lists of str.

    ``name``: corpus name or file path; ``language``: ``"zh"`` or ``"en"``;
    ``metric_tokenization``: ``"char"`` (Chinese) or ``"word"`` (English), how metrics
    tokenise this corpus; ``files``: the files read (absolute paths);
    ``removed_controls``: terminal escape sequences and control characters removed from
    the samples (see :mod:`gan_writer.data.clean`); ``source``: ``"registered"`` (a name
    from :func:`list_corpora`) or ``"path"`` (a user file or directory).
    """
    train: list[str]
    valid: list[str]
    test: list[str]
    name: str
    language: str
    metric_tokenization: str
    files: tuple[str, ...] = field(default=(), compare=False)
    removed_controls: int = field(default=0, compare=False)
    source: str = field(default="registered", compare=False)

    @property
    def sizes(self) -> dict[str, int]:
        """``{"train": n, "valid": n, "test": n}`` (e.g. to check a batch fits)."""
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


@lru_cache(maxsize=1)
def registry() -> dict[str, dict]:
    """The packaged file table: data-folder relative path -> {sha256, size, url[, archive_member]}."""
    text = resources.files(__package__).joinpath("registry.json").read_text(encoding="utf-8")
    return json.loads(text)["files"]


# ---------------------------------------------------------------- corpus loaders
_VERSE_SPLIT = re.compile(r"[，。！？；：、,.!?;:]")
_NOTE = re.compile(r"（[^（）]*(?:）|\Z)")  # innermost note, or one left open at the end


def _strip_notes(text: str) -> str:
    while (new := _NOTE.sub("", text)) != text:  # nested notes: innermost first
        text = new
    return text


def _poems(paths: list[Path], *, chars_per_line=None, quatrains_only=False, strip_notes=True) -> list[str]:
    """chinese-poetry poems, paragraphs joined with "\n". A quatrain (绝句) is 4 verses (split
    at ，。！？；： etc.) of 5 or 7 characters each; ``chars_per_line`` keeps poems whose every
    verse has that many characters. Either filter also drops poems with non-ideograph
    characters (□ for lost characters, {} / [] editorial marks) in their verses.
    ``strip_notes`` removes fullwidth-parenthesised editorial notes （一作「...」）."""
    out = []
    for path in paths:
        for poem in R.parse_chinese_poetry(R.read_text(path), path):
            text = "\n".join(poem["paragraphs"])
            if strip_notes:  # notes may span paragraphs
                text = _strip_notes(text)
            # lines with punctuation only (e.g. "。" left by a note, or a whole poem "。") are dropped
            text = "\n".join(ln.strip() for ln in text.split("\n") if any(map(str.isalnum, ln)))
            if not text:
                continue
            if quatrains_only or chars_per_line:
                verses = [v for v in _VERSE_SPLIT.split(text.replace("\n", "")) if v]
                if not verses or not all(R.is_cjk(c) for v in verses for c in v):
                    continue
                if quatrains_only and (len(verses) != 4 or len({len(v) for v in verses}) != 1
                                       or len(verses[0]) not in (5, 7)):
                    continue
                if chars_per_line and any(len(v) != chars_per_line for v in verses):
                    continue
            out.append(text)
    return out


def _shi(paths, *, keep_spaces=False):
    lines = R.parse_lines(R.read_text(paths[0]))
    return lines if keep_spaces else ["".join(s.split()) for s in lines]


def _sonnets(paths, *, line_separator="\n"):
    def read(p):
        return [line_separator.join(v.strip() for v in s.split("<eos>") if v.strip())
                for s in R.parse_lines(R.read_text(p))]
    return {"train": read(paths[0]), "valid": read(paths[1]), "test": read(paths[2])}


def _jsonl(paths):
    return [s for p in paths for s in R.parse_jsonl(R.read_text(p), "text", p)]


def _english_poems(paths, *, unit="poem", lines_per_sample=4):
    return _jsonl(paths)  # whole poems; ``unit: lines`` chunks them after the split (_chunk_lines)


def _chunk_lines(samples, *, unit="poem", lines_per_sample=4):
    """``unit: lines``: each poem as consecutive chunks of ``lines_per_sample`` lines, made
    after the poems are split, so no poem has chunks in two splits."""
    if unit == "poem":
        return samples
    out = []
    for poem in samples:
        lines = [line for line in poem.split("\n") if line.strip()]
        out.extend("\n".join(lines[i:i + lines_per_sample]) for i in range(0, len(lines), lines_per_sample))
    return out


def _shakespeare(paths, *, unit="turn", turns_per_scene=20):
    text = R.read_text(paths[0])
    out = []
    for play in re.split(r"\n\s*\n\s*\n", text):  # two triple blank lines mark play changes
        turns = [b for b in R.parse_blocks(play) if "\n" in b and b.split("\n", 1)[0].endswith(":")]
        if unit == "turn":
            out.extend(turns)
        else:
            out.extend("\n\n".join(turns[i:i + turns_per_scene])
                       for i in range(0, len(turns), turns_per_scene))
    return out


_SPEAKER = re.compile(r"^[A-Z][\w'.-]*(?: [A-Z][\w'.-]*)*\.  +\S")
_ACT = re.compile(r"^(FIRST|SECOND|THIRD|FOURTH) ACT$")


def _earnest(paths, *, unit="speech"):
    paras = R.parse_paragraphs(R.strip_gutenberg(R.read_text(paths[0])))
    acts: list[list[str]] = []
    for p in paras:
        if _ACT.match(p):
            acts.append([])
        elif acts and p not in ("SCENE", "ACT DROP", "TABLEAU"):
            acts[-1].append(p)
    if unit == "act":
        return ["\n".join(a) for a in acts]
    return [p for a in acts for p in a if _SPEAKER.match(p)]


def _grimm(paths, *, unit="tale", include_title=True):
    text = R.strip_gutenberg(R.read_text(paths[0]))
    text = text.split("\nTHE BROTHERS GRIMM FAIRY TALES\n", 1)[-1].split("\n*****\n", 1)[0]
    tales, lines = [], text.split("\n")
    for i, line in enumerate(lines):  # a title: an upper-case line after >= 3 blank lines
        if (line.strip() and line == line.upper() and line[:1].isalpha() and i >= 3
                and not any(x.strip() for x in lines[i - 3:i])):
            tales.append([line.strip(), []])
        elif tales:
            tales[-1][1].append(line)
    out = []
    for title, body in tales:
        paras = R.parse_paragraphs("\n".join(body))
        if unit == "paragraph":
            out.extend(p for p in paras if p != p.upper())  # drop sub-headings
        else:
            out.append("\n".join(([title] if include_title else []) + paras))
    return out


def _pride(paths, *, unit="chapter"):
    text = R.strip_gutenberg(R.read_text(paths[0]))
    chapters = re.split(r"^Chapter \d+\s*$", text, flags=re.M)[1:]
    paras = [R.parse_paragraphs(c) for c in chapters]
    if unit == "paragraph":
        return [p for c in paras for p in c]
    return ["\n".join(c) for c in paras]


def _coco(paths):
    return {"train": R.parse_lines(R.read_text(paths[0])), "test": R.parse_lines(R.read_text(paths[1]))}


def _emnlp(paths):
    return {"train": [], "valid": [], "test": R.parse_lines(R.read_text(paths[0]))}


@dataclass(frozen=True)
class _Spec:
    description: str
    language: str
    files: tuple[str, ...]
    load: Callable
    options: dict = field(default_factory=dict)  # name -> (default, allowed values | type)
    after_split: Callable | None = None  # (samples of one split, **options) -> samples


_TANG_FILES = tuple(f"poetry_zh/tang/poet.tang.{i}.json" for i in range(0, 58000, 1000))  # numeric order
_TANG_OPTS = {"chars_per_line": (None, (None, 5, 7)), "quatrains_only": (True, (True, False)),
              "strip_notes": (True, (True, False))}

CORPORA: dict[str, _Spec] = {
    "shi": _Spec("SeqGAN's Chinese 5-character quatrains (Texygen shi.txt), 16,394 poems, simplified",
                 "zh", ("poetry_zh/shi.txt",), _shi, {"keep_spaces": (False, (True, False))}),
    "tang": _Spec("Complete Tang poems (chinese-poetry 全唐诗), traditional; default: 5- and 7-char quatrains",
                  "zh", _TANG_FILES, _poems, _TANG_OPTS),
    "tangshi300": _Spec("唐诗三百首, 366 poems (chinese-poetry), traditional; all forms by default",
                        "zh", ("poetry_zh/tang/tangshi300.json",), _poems,
                        {**_TANG_OPTS, "quatrains_only": (False, (True, False))}),
    "sonnets": _Spec("Gutenberg sonnets (deepspeare), lower-cased and tokenised, official 2685/335/335 split",
                     "en", tuple(f"poetry_en/sonnets/sonnet_{s}.txt" for s in ("train", "valid", "test")),
                     _sonnets, {"line_separator": ("\n", str)}),
    "english_poems": _Spec("Public-domain English poems of 4-40 lines (facjure), 19,051 poems",
                           "en", tuple(f"poetry_en/public_domain/poems_4to40_0{i}.jsonl" for i in range(5)),
                           _english_poems, {"unit": ("poem", ("poem", "lines")), "lines_per_sample": (4, int)}, _chunk_lines),
    "shakespeare": _Spec("tinyshakespeare (char-rnn) as speaker turns, or passages of consecutive turns",
                         "en", ("scripts/tinyshakespeare.txt",), _shakespeare,
                         {"unit": ("turn", ("turn", "scene")), "turns_per_scene": (20, int)}),
    "earnest": _Spec("Wilde, The Importance of Being Earnest (Gutenberg 844), as speeches or acts",
                     "en", ("scripts/earnest_844.txt",), _earnest, {"unit": ("speech", ("speech", "act"))}),
    "grimm": _Spec("Grimms' Fairy Tales (Gutenberg 2591), one sample per tale (63) or paragraph",
                   "en", ("stories/grimm_2591.txt",), _grimm,
                   {"unit": ("tale", ("tale", "paragraph")), "include_title": (True, (True, False))}),
    "pride": _Spec("Austen, Pride and Prejudice (Gutenberg 1342), by chapter (61) or paragraph",
                   "en", ("stories/pride_1342.txt",), _pride, {"unit": ("chapter", ("chapter", "paragraph"))}),
    "coco": _Spec("Image COCO captions, text-GAN benchmark: 9,999 train (valid carved out) + 9,999 test",
                  "en", ("benchmarks/coco/train_coco.txt", "benchmarks/coco/test_coco.txt"), _coco),
    "emnlp_test": _Spec("EMNLP2017 WMT News test split, 10,000 sentences: reference set (test only)",
                        "en", ("benchmarks/emnlp/test_emnlp.txt",), _emnlp),
}
_USER_OPTIONS = {"strip_gutenberg": (None, (None, True, False))}


def list_corpora() -> dict[str, str]:
    """Registered corpus names mapped to a one-line description."""
    return {name: spec.description for name, spec in CORPORA.items()}


def corpus_options(name: str) -> dict[str, object]:
    """Option names of a registered corpus with their defaults (``{}`` if none)."""
    return {k: v[0] for k, v in _spec(name).options.items()}


def corpus_files(name: str) -> list[str]:
    """Data-folder relative paths of a registered corpus's files."""
    return list(_spec(name).files)


def _spec(name: str) -> _Spec:
    if name not in CORPORA:
        raise UnknownCorpusError(f"unknown corpus {name!r}; registered corpora: {', '.join(CORPORA)}")
    return CORPORA[name]


def fetch_corpus(name: str, *, data_dir=None, cache_dir=None, mirror=None) -> list[Path]:
    """Resolve (downloading if needed) every file of a registered corpus; see
    :func:`gan_writer.data.fetch.resolve_file` for the order and the errors raised."""
    table, paths = registry(), []
    for rel in _spec(name).files:
        try:
            paths.append(resolve_file(rel, data_dir=data_dir, cache_dir=cache_dir, mirror=mirror,
                                      url=table[rel]["url"], sha256=table[rel]["sha256"],
                                      archive_member=table[rel].get("archive_member")))
        except DownloadError as err:  # name the corpus and the file the folder must hold
            raise DownloadError(f"corpus {name!r} ({rel}): {err}") from err
    return paths


def _check_options(where: str, allowed: dict, given: dict) -> dict:
    values = {k: v[0] for k, v in allowed.items()}
    for key, value in given.items():
        if key not in allowed:
            valid = ", ".join(f"{k} (default {v[0]!r})" for k, v in allowed.items()) or "none"
            raise CorpusOptionError(f"unknown option {key!r} for {where}; valid options: {valid}")
        kind = allowed[key][1]
        if isinstance(kind, type):
            ok = isinstance(value, kind) and not isinstance(value, bool) and (kind is not int or value >= 1)
            expected = "an int >= 1" if kind is int else f"a {kind.__name__}"
        else:  # allowed values; `is`/type check so that True does not pass for 1
            ok = any(value is a or (type(value) is type(a) and value == a) for a in kind)
            expected = " or ".join(map(repr, kind))
        if not ok:
            raise CorpusOptionError(f"option {key}={value!r} for {where} is invalid: expected {expected}")
        values[key] = value
    return values


def _clean(parts, name) -> tuple[object, int]:
    """``parts`` (a list, or a dict of lists) without control characters; warns with the count."""
    if isinstance(parts, dict):
        cleaned = {k: clean_samples(v) for k, v in parts.items()}
        parts, removed = {k: v[0] for k, v in cleaned.items()}, sum(v[1] for v in cleaned.values())
    else:
        parts, removed = clean_samples(parts)
    if removed:
        warnings.warn(f"{name}: removed {removed} terminal escape sequence(s) and control character(s) "
                      "(ESC [ ... m colour codes, NUL, BEL, ...) from the samples; they are never trained on",
                      stacklevel=3)
    return parts, removed


def _finish(parts, name, language, files, seed, valid_fraction, test_fraction, source) -> CorpusSplits:
    parts, removed = _clean(parts, name)
    if isinstance(parts, dict):
        train, test = parts.get("train", []), parts.get("test")
        valid = parts.get("valid")
        if test is None:
            train, test = carve(train, test_fraction, seed=seed)
        if valid is None:
            train, valid = carve(train, valid_fraction, seed=seed)
        R.require_samples(train + valid + test, name)
    else:
        train, valid, test = split_samples(R.require_samples(parts, name), seed=seed,
                                           valid_fraction=valid_fraction, test_fraction=test_fraction)
    return CorpusSplits(list(train), list(valid), list(test), name=name, language=language,
                        metric_tokenization="char" if language == "zh" else "word",
                        files=tuple(str(Path(f).resolve()) for f in files), removed_controls=removed,
                        source=source)


_SPLIT_STEMS = {"train": "train", "valid": "valid", "validation": "valid", "dev": "valid", "test": "test"}
_USER_SUFFIXES = {".txt", ".text", ".jsonl", ".ndjson", ".json"}


def _user_parts(path: Path, fmt, text_field, encoding, strip) -> tuple[object, list[Path]]:
    def read(p):
        return R.read_samples(p, fmt, text_field=text_field, encoding=encoding, strip_gutenberg_text=strip)
    if path.is_file():
        return read(path), [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _USER_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not files:
        raise CorpusNotFoundError(f"directory {path} has no .txt/.jsonl/.json files: add your corpus "
                                  "files there or pass a file path")
    kinds = {p: _SPLIT_STEMS.get(p.stem.lower()) for p in files}
    if any(kinds.values()):
        others = [str(p) for p, k in kinds.items() if k is None]
        if others:
            raise CorpusFormatError(f"directory {path} mixes split files (train/valid/test) with other "
                                    f"files: {', '.join(others)}; move those out or load files one by one")
        parts: dict[str, list[str]] = {}
        for p in files:
            parts.setdefault(kinds[p], []).extend(read(p))
        return parts, files
    return [s for p in files for s in read(p)], files


def looks_like_path(name: str) -> bool:
    """True for a user path rather than a corpus name: it holds a path separator, starts
    with ``~`` or ``.``, or ends in a corpus file extension (``.txt``, ``.jsonl``, ``.json`` ...)."""
    return (os.sep in name or "/" in name or name.startswith(("~", "."))
            or Path(name).suffix.lower() in _USER_SUFFIXES)


def load_corpus(name_or_path: str | os.PathLike, *, data_dir: str | None = None,
                cache_dir: str | None = None, seed: int = 0, valid_fraction: float = 0.05,
                test_fraction: float = 0.05, format: str | None = None, text_field: str = "text",
                encoding: str = "utf-8", language: str | None = None, **options) -> CorpusSplits:
    """Load a registered corpus or a user file/directory, split into train/valid/test.

    Args:
        name_or_path: a name from :func:`list_corpora` (always the registered corpus, even
            if a file or folder of that name is in the working directory), or a path, which
            must look like one (``./shi``, ``data/poems``, ``poems.txt``). A file's format comes
            from ``format`` or its extension (.txt lines, .jsonl, .json chinese-poetry).
            A directory: all its .txt/.jsonl/.json files (sorted); if they are named
            ``train``/``valid`` (or ``validation``/``dev``)/``test`` those are the splits
            (a missing valid or test is carved from train).
        data_dir, cache_dir: where files are looked for / downloaded to (see
            :func:`gan_writer.data.fetch.resolve_file`); registered corpora only.
        seed, valid_fraction, test_fraction: deterministic split (see
            :mod:`gan_writer.data.split`); official splits are kept (coco/user valid is
            carved with ``valid_fraction``).
        format, text_field, encoding: for user files (see :mod:`gan_writer.data.readers`):
            ``format`` lines / blocks / paragraphs / fortune / jsonl / json; ``text_field``
            a key or a list of keys (joined with ``"\\n"``); registered corpora have a
            fixed format and encoding. Every corpus is stripped of terminal escape
            sequences and control characters (count in ``removed_controls``, with a warning).
        language: ``"zh"`` or ``"en"``; None detects it for user files.
        **options: corpus options (``corpus_options(name)``): shi ``keep_spaces``; tang /
            tangshi300 ``chars_per_line`` (5, 7, None), ``quatrains_only``, ``strip_notes``
            (drop （...） editorial notes); sonnets ``line_separator``; shakespeare ``unit``
            ("turn"/"scene"), ``turns_per_scene``; earnest ``unit`` ("speech"/"act"); grimm
            ``unit`` ("tale"/"paragraph"), ``include_title``; pride ``unit``
            ("chapter"/"paragraph"); user files ``strip_gutenberg`` (None = auto).
    Returns:
        CorpusSplits.
    Raises:
        UnknownCorpusError: not a registered name nor an existing path (lists the names), or
            an existing path written like a name (asks for ``./name``).
        CorpusOptionError: unknown option / invalid value (names it and the valid ones).
        CorpusNotFoundError, CorpusDecodeError, CorpusFormatError, EmptyCorpusError,
        ChecksumError, DownloadError: see readers / fetch. ValueError: bad fractions.
    """
    name = os.fspath(name_or_path)
    if language not in (None, "zh", "en"):
        raise CorpusOptionError(f"language must be 'zh', 'en' or None, got {language!r}")
    if name in CORPORA:
        spec = CORPORA[name]
        fixed = {"format": (format, None), "text_field": (text_field, "text"), "encoding": (encoding, "utf-8")}
        bad = [k for k, (v, d) in fixed.items() if v != d]
        if bad or language not in (None, spec.language):
            raise CorpusOptionError(f"{', '.join(bad) or 'language'} cannot be set for the registered "
                                    f"corpus {name!r} (fixed format, encoding, language {spec.language!r}); "
                                    "they apply to user files")
        opts = _check_options(f"corpus {name!r}", spec.options, options)
        files = fetch_corpus(name, data_dir=data_dir, cache_dir=cache_dir)
        splits = _finish(spec.load(files, **opts), name, spec.language, files, seed, valid_fraction, test_fraction,
                         "registered")
        if spec.after_split is not None:
            splits = dataclasses.replace(splits, **{part: spec.after_split(getattr(splits, part), **opts)
                                                    for part in ("train", "valid", "test")})
        return splits
    path = Path(name).expanduser()
    if path.exists() and not looks_like_path(name):
        raise UnknownCorpusError(
            f"{name!r} is not a registered corpus (registered: {', '.join(CORPORA)}). A local file or "
            f"directory must be written as a path, so that it can never be mistaken for a corpus name: "
            f"./{name} (or {path.resolve()})")
    if not path.exists():
        if looks_like_path(name):
            where = "" if path.is_absolute() else f" (relative paths start from {Path.cwd()})"
            raise CorpusNotFoundError(
                f"corpus file not found: {path.absolute()}{where}. "
                f"Check the path, or use a registered corpus: {', '.join(CORPORA)}")
        raise UnknownCorpusError(f"{name!r} is neither a registered corpus nor an existing file or "
                                 f"directory. Registered corpora: {', '.join(CORPORA)} (README: Corpora); "
                                 "for your own data pass the path of a .txt/.jsonl/.json file or a directory")
    opts = _check_options(f"user file {str(path)!r}", _USER_OPTIONS, options)
    parts, files = _user_parts(path, format, text_field, encoding, opts["strip_gutenberg"])
    if language is None:
        flat = parts if isinstance(parts, list) else [s for v in parts.values() for s in v]
        language = R.detect_language(flat)
    return _finish(parts, str(path), language, files, seed, valid_fraction, test_fraction, "path")
