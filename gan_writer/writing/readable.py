"""Word-level text as a writer reads it: punctuation against its word, apostrophes inside words.

The word tokenizer (Texygen convention, :func:`gan_writer.tokenization.word_tokenizer`) splits
on whitespace and isolates every punctuation character, so its decoded text reads
``"o ' er the sea , and ‘ truth ’ ."``. :func:`readable` joins it back —
``"o'er the sea, and ‘truth’."`` — for what writers see (``gan-writer write``, ``image-poem``,
co-writing); the text the models and metrics work on is unchanged. The join is lossless for
that tokenizer: encoding the readable text gives the same ids (spacing around punctuation is
not part of a word-level token).
"""
from __future__ import annotations

import re

__all__ = ["readable", "readable_for", "readable_in"]

_APOSTROPHE = re.compile(r"(?<=\w) (['’]) (?=\w)")          # o ' er -> o'er, man ' s -> man's
_BEFORE = re.compile(r" +(?=[,.;:!?)\]}”»…’])")             # no space before closing marks
_AFTER = re.compile(r"(?<=[(\[{“«‘]) +")                     # none after opening marks


def readable(text: str) -> str:
    """``text`` with the word tokenizer's spaces around punctuation removed, line by line
    (line breaks kept, each line stripped). Words, their order and case are unchanged."""
    lines = []
    for line in text.split("\n"):
        line = _APOSTROPHE.sub(r"\1", line)
        line = _AFTER.sub("", _BEFORE.sub("", line))
        lines.append(line.strip())
    return "\n".join(lines)


def readable_for(tokenizer, text: str) -> str:
    """:func:`readable` when ``tokenizer`` is gan_writer's word tokenizer, else ``text`` as it is
    (character-level and BPE tokenizers decode the text exactly)."""
    kind = getattr(tokenizer, "init_kwargs", {}).get("gan_writer_kind")
    return readable(text) if kind == "word" else text


def readable_in(session, text: str) -> str:
    """:func:`readable_for` with the tokenizer of a co-writing ``session``'s model (none: as it is)."""
    return readable_for(getattr(session.generator, "tok", None), text)
