"""Hard form constraints by constrained decoding over the project's own decode loop.

A :class:`FormProcessor` is a logits processor for :func:`gan_writer.sampling.decode`: before
each draw it decodes every row's tokens so far to text, works out where the row stands in
the form (line, characters or words in the line, rhyme partner) and sets the logits of
every token that would break the form to ``-inf``. It counts *decoded characters and
words*, never tokens, so it works for char, word and BPE tokenizers alike: each vocabulary
entry's decoded string is looked up once (:class:`TokenTable`).

* Chinese forms: a line takes only tokens made of CJK ideographs that still fit in it;
  once full, only its punctuation (``，`` odd lines, ``。`` even lines); after the last
  line only EOS. Every sample has exactly the form's lines and characters.
* English forms: a line break (EOS after the last line) is allowed only once the line has
  at least its target syllables minus 3 and its last word rhymes (CMU dictionary) with the
  end word of its rhyme partner; the first line of a rhyme letter must end on a word that
  has a rhyme in the vocabulary. A line that reaches its target syllables (``max_words``
  words for free verse) is forced to a rhyming word and then a break. Exact syllable
  counts are soft: reranked (see :mod:`gan_writer.writing.rerank`).

Tokens that decode to partial UTF-8 (BPE pieces of one character) are never chosen
under a Chinese form.
"""
from __future__ import annotations

import functools
import re

import torch

from gan_writer.sampling import decode
from gan_writer.tokenization import NEWLINE
from gan_writer.writing import rhyme as R
from gan_writer.writing.forms import LINE_END, Form

NEG = float("-inf")


class TokenTable:
    """What each vocabulary entry decodes to, for counting characters and words.

    Attributes:
        strings: ``V`` decoded strings (``""`` for special tokens).
        hanzi_len: ``(V,)`` int64, number of characters when the string is all CJK
            ideographs, else 0.
        newline: ``(V,)`` bool, tokens that break a line (``\\n`` or the word tokenizer's ``␤``).
        word: ``(V,)`` bool, tokens that are one alphabetic word (optionally one leading space).
        punct: ``(V,)`` bool, tokens of ASCII/CJK punctuation only.
    """

    def __init__(self, tokenizer) -> None:
        v = len(tokenizer)
        special = set(tokenizer.all_special_ids)
        self.strings = ["" if i in special else tokenizer.decode([i]) for i in range(v)]
        self.hanzi_len = torch.tensor([len(s) if s and all(map(R.is_hanzi, s)) else 0 for s in self.strings])
        self.newline = torch.tensor([s == NEWLINE or ("\n" in s and not s.strip()) for s in self.strings])
        self.word = torch.tensor([bool(R.WORD_RE.fullmatch(s.lstrip(" "))) and s.count(" ") <= 1 for s in self.strings])
        self.punct = torch.tensor([bool(s.strip()) and all(c in ",.;:!?'\"-—，。！？；：、" for c in s.strip())
                                   for s in self.strings])
        self.special = torch.tensor([s == "" for s in self.strings])
        # partial UTF-8 (BPE byte pieces) and control characters are never written
        self.clean = torch.tensor([s != "" and "\ufffd" not in s and all(c.isprintable() or c in " \n" for c in s)
                                   for s in self.strings])
        words = [i for i in range(v) if self.word[i]]
        # does decoding put a space between two word tokens (word-level) or glue them (BPE)?
        self.spaced = len(words) >= 2 and " " in tokenizer.decode(words[:2]).strip()
        # tokens that start a new word: every word token (word-level) or those with a leading space (BPE)
        self.vocab_words = {s.strip().lower(): i for i, s in enumerate(self.strings)
                            if self.word[i] and (self.spaced or s.startswith(" "))}
        self._rhyme_index: dict[str, set[int]] | None = None

    @functools.cached_property
    def word_syllables(self) -> torch.Tensor:
        """``(V,)`` int64: syllables of each whole-word token of a word-level vocabulary (0 for
        other tokens, and for every token of a BPE one, whose words span several tokens)."""
        if not self.spaced:
            return torch.zeros(len(self.strings), dtype=torch.long)
        return torch.tensor([R.syllables(s.strip())[0] if self.word[i] else 0 for i, s in enumerate(self.strings)])

    @property
    def rhyme_index(self) -> dict[str, set[int]]:
        """Rhyming part (CMU phones from the last stressed vowel) -> ids of the word tokens with it."""
        if self._rhyme_index is None:
            index: dict[str, set[int]] = {}
            for w, i in self.vocab_words.items():
                if len(w) < 2 and w not in ("i", "o"):
                    continue
                for key in R.rhyme_keys(w):
                    index.setdefault(key, set()).add(i)
            self._rhyme_index = index
        return self._rhyme_index

    def rhymes_of(self, word: str) -> set[int]:
        """Ids of vocabulary words that rhyme with ``word`` (the word itself excluded)."""
        own = self.vocab_words.get(word.lower())
        out: set[int] = set()
        for key in R.rhyme_keys(word):
            out |= self.rhyme_index.get(key, set())
        out.discard(own)
        return {i for i in out if self.strings[i].strip().lower() != word.lower()}

    @functools.cached_property
    def rhymable(self) -> list[int]:
        """Ids of vocabulary words that have at least one rhyme in the vocabulary."""
        return sorted({i for ids in self.rhyme_index.values() if len(ids) >= 2 for i in ids})

    def ids_of(self, text: str) -> list[int]:
        """Token ids whose decoded string is exactly ``text``."""
        return [i for i, s in enumerate(self.strings) if s == text]


@functools.lru_cache(maxsize=8)
def _table_for(tokenizer) -> TokenTable:
    return TokenTable(tokenizer)


def token_table(tokenizer) -> TokenTable:
    """A cached :class:`TokenTable` for ``tokenizer``."""
    return _table_for(tokenizer)


class FormProcessor:
    """Logits processor that enforces a form's hard constraints (see the module docstring).

    Args:
        form: the form (its ``lines``, ``chars``).
        tokenizer: decodes ids; its vocabulary must hold the form's punctuation (Chinese)
            or a line-break token (English).
        eos_token_id: the generator's EOS.
        scheme: English rhyme scheme, one letter per line (``X``: unrhymed), or None.
        min_words, max_words: English words per line before a break may / must come.
        strict_rhyme: Chinese forms only: also make the rhyme hard — line 2 ends on a
            level-tone (平) character and every later even line on one that shares a 平水韵
            level-tone group with it (the 平仄 pattern stays soft).
        steps: the token budget of the draw; an English line is forced to end (rhyme word,
            then break) when only two tokens per remaining line are left, so every draft
            has the form's line count as long as ``steps >= 2 * lines``.

    Raises:
        ValueError: if the tokenizer cannot write the form (no ``，``/``。`` or no
            ideographs for Chinese; no line break for a multi-line English form).
    """

    def __init__(self, form: Form, tokenizer, eos_token_id: int, scheme: str | None = None,
                 min_words: int | None = None, max_words: int | None = None, steps: int | None = None,
                 strict_rhyme: bool = False) -> None:
        self.form, self.tok, self.eos, self.scheme = form, tokenizer, eos_token_id, scheme
        self.steps, self._drawn, self.strict_rhyme = steps, 0, strict_rhyme
        self.after: dict[int, str] = {}  # line index -> end word of the fixed lines after a rewrite (English)
        self.table = token_table(tokenizer)
        if form.language == "zh":
            self.ends = []
            for mark in LINE_END:
                ids = self.table.ids_of(mark)
                if not ids:
                    raise ValueError(f"the checkpoint's tokenizer has no token for {mark!r}, which the {form.name} form needs")
                self.ends.append(ids[0])
            if int((self.table.hanzi_len > 0).sum()) == 0:
                raise ValueError(f"the checkpoint's tokenizer has no Chinese characters; the {form.name} form needs them")
            if strict_rhyme:  # (V, G): the last character of the token is in level-tone group g
                groups = [R.ping_groups(s[-1]) if n else set() for s, n in zip(self.table.strings, self.table.hanzi_len.tolist())]
                self.group_names = sorted(set().union(*groups))
                index = {g: j for j, g in enumerate(self.group_names)}
                self.final_groups = torch.zeros(len(groups), len(index), dtype=torch.bool)
                for i, gs in enumerate(groups):
                    for g in gs:
                        self.final_groups[i, index[g]] = True
        else:
            ids = torch.nonzero(self.table.newline).flatten().tolist()
            if not ids and (form.lines or 1) > 1:
                raise ValueError(f"the checkpoint's tokenizer cannot write a line break, which the {form.name} form needs")
            self.newline_ids = ids
            target = min(form.syllables) if form.syllables else 6
            self.min_words = min_words if min_words is not None else max(1, target // 3)
            self.max_words = max_words if max_words is not None else (max(form.syllables) + 2 if form.syllables else 20)

    # ---- per-row state ---------------------------------------------------------------
    def allowed(self, text: str, line_tokens: int = 0) -> torch.Tensor:
        """``(V,)`` bool mask of the tokens allowed after the decoded ``text``, whose current
        line holds ``line_tokens`` tokens (English lines are capped by tokens too)."""
        return self._allowed_zh(text) if self.form.language == "zh" else self._allowed_en(text, line_tokens)

    def _allowed_zh(self, text: str) -> torch.Tensor:
        v = len(self.table.strings)
        mask = torch.zeros(v, dtype=torch.bool)
        done = sum(text.count(m) for m in LINE_END)
        cur = sum(map(R.is_hanzi, text[max(text.rfind("，"), text.rfind("。")) + 1:]))
        if done >= self.form.lines:
            mask[self.eos] = True
        elif cur >= self.form.chars:
            mask[self.ends[done % 2 if done + 1 < self.form.lines else 1]] = True
        else:
            left = self.form.chars - cur
            mask |= (self.table.hanzi_len > 0) & (self.table.hanzi_len <= left)
            if self.strict_rhyme and done % 2 == 1:
                mask = self._rhyme_mask(mask, left, text, done)
        return mask

    def _rhyme_mask(self, mask: torch.Tensor, left: int, text: str, done: int) -> torch.Tensor:
        """Drop line-ending tokens whose last character cannot rhyme (strict_rhyme)."""
        if done == 1:
            ok = self.final_groups.any(1)
        else:
            second = [c for c in re.split("[，。]", text)[1] if R.is_hanzi(c)][-1]
            want = torch.tensor([g in R.ping_groups(second) for g in self.group_names], dtype=torch.bool)
            ok = (self.final_groups & want).any(1)
        ends_line = self.table.hanzi_len == left
        new = mask & (~ends_line | ok)
        return new if bool((new & ends_line).any()) else mask

    def _partner(self, lines: list[str]) -> str | None:
        """The end word line ``len(lines) - 1`` must rhyme with: an earlier line's of its rhyme
        letter, else a later fixed line's (:attr:`after`, a rewrite), else ``""`` (any word with
        a rhyme in the vocabulary); None for an unrhymed line."""
        i = len(lines) - 1
        if not self.scheme or i >= len(self.scheme) or self.scheme[i] == "X":
            return None
        j = self.scheme.find(self.scheme[i])
        if j < i:
            return R.last_word(lines[j])
        later = [w for k, w in sorted(self.after.items()) if k > i and k < len(self.scheme) and w
                 and self.scheme[k] == self.scheme[i]]
        return later[0] if later else ""

    def _group_ends(self, lines: list[str]) -> set[str]:
        """End words (lower case) of the other lines of line ``len(lines) - 1``'s rhyme letter,
        earlier ones and later fixed ones (:attr:`after`): a word repeated is no rhyme."""
        i = len(lines) - 1
        if not self.scheme or i >= len(self.scheme) or self.scheme[i] == "X":
            return set()
        ends = [R.last_word(lines[j]) for j in range(i) if self.scheme[j] == self.scheme[i]]
        ends += [w for k, w in self.after.items() if k > i and k < len(self.scheme) and self.scheme[k] == self.scheme[i]]
        return {w.lower() for w in ends if w}

    def _end_ok(self, word: str | None, partner: str | None) -> bool:
        if partner is None:
            return word is not None
        if not word or (len(word) < 2 and word.lower() not in ("i", "o")):  # not a clipped "'d" or "s"
            return False
        if partner == "":  # first line of its rhyme letter: a vocabulary word must rhyme with it
            return bool(self.table.rhymes_of(word))
        return R.english_rhymes(partner, word)

    def _line_bounds(self, i: int) -> tuple[int, int, bool]:
        """``(least, most, by_syllables)`` size of line ``i`` before a break may / must come."""
        syl = self.form.syllables
        if syl and i < len(syl):
            return max(1, syl[i] - 3), syl[i], True
        return self.min_words, self.max_words, False

    def _allowed_en(self, text: str, line_tokens: int = 0) -> torch.Tensor:
        v = len(self.table.strings)
        lines = text.split("\n")
        n_lines = self.form.lines
        line = lines[-1]
        words = R.line_words(line)
        least, most, by_syl = self._line_bounds(len(lines) - 1)
        size = sum(R.syllables(w)[0] for w in words) if by_syl else len(words)
        partner = self._partner(lines)
        last = len(lines) == n_lines
        end = R.last_word(line)
        can_end = size >= least and self._end_ok(end, partner) and (end or "").lower() not in self._group_ends(lines)
        left = None if self.steps is None or n_lines is None else self.steps - self._drawn
        tight = left is not None and left <= 2 * (n_lines - len(lines) + 1)
        brk = torch.zeros(v, dtype=torch.bool)
        if last or n_lines is None:
            brk[self.eos] = True
        if not last:
            brk[self.newline_ids] = True
        normal = self.table.clean & ~self.table.newline
        if by_syl and size < most:  # a word may not carry the line past its syllables: only the rhyme word may
            normal = normal & (self.table.word_syllables <= most - size)
        cap = (max(self.form.syllables) if self.form.syllables else self.max_words) + 5  # tokens a line may use
        if size >= most or line_tokens >= cap or tight:
            if can_end:
                return brk
            forced = torch.zeros(v, dtype=torch.bool)
            forced[self._forced_words(partner)] = True
            return forced if forced.any() else brk  # no rhyme in the vocabulary: break anyway
        return normal | brk if can_end else normal

    def _forced_words(self, partner: str | None) -> list[int]:
        if partner is None:
            return list(self.table.vocab_words.values())
        if partner == "":
            return self.table.rhymable
        return sorted(self.table.rhymes_of(partner))

    def __call__(self, drawn: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Mask ``logits`` ``(N, V)`` given the ``(N, i)`` tokens drawn so far."""
        self._drawn = drawn.size(1)
        texts = self.tok.batch_decode(drawn.tolist(), skip_special_tokens=True) if drawn.size(1) else [""] * drawn.size(0)
        counts = [0] * drawn.size(0)
        if self.form.language != "zh" and drawn.size(1):
            is_break = torch.zeros(drawn.shape, dtype=torch.bool)
            for i in self.newline_ids:
                is_break |= drawn.cpu() == i
            pos = torch.arange(1, drawn.size(1) + 1).expand_as(is_break)
            last = (pos * is_break).max(1).values  # 1-based position of the last break, 0 if none
            counts = (drawn.size(1) - last).tolist()
        masks = torch.stack([self.allowed(t, c) for t, c in zip(texts, counts)]).to(logits.device)
        width = min(masks.size(1), logits.size(1))
        out = torch.full_like(logits, NEG)
        out[:, :width] = logits[:, :width].masked_fill(~masks[:, :width], NEG)
        return out


def max_tokens(form: Form, default: int) -> int:
    """Token budget of a draft: a Chinese form's characters and marks (the final EOS is implied
    once the last ``。`` is drawn); an English form's lines × (``max(syllables)`` + 7) + 1;
    ``default`` for free verse."""
    if form.language == "zh":
        return form.lines * (form.chars + 1)
    if form.lines and form.syllables:
        return form.lines * (max(form.syllables) + 7) + 1
    return default


@torch.no_grad()
def constrained_sample(generator, n: int, steps: int, processor=None, prompt_ids: torch.Tensor | None = None,
                       temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Sample ``n`` continuations with ``processor`` applied before every draw.

    Args:
        generator: any :class:`gan_writer.models.base.CausalGenerator` (eval mode).
        n: number of samples.
        steps: tokens to draw at most; clipped to the model's positions.
        processor: a logits processor (``FormProcessor`` or None for free sampling).
        prompt_ids: ``(P,)`` prompt shared by every row (no BOS), or None.
        temperature, top_k, top_p, seed: see :func:`gan_writer.sampling.sample_from_logits`.

    Returns:
        ``(n, T)`` int64 ids of the continuations only (padded after EOS).

    Raises:
        ValueError: if the prompt leaves no room in the model's positions.
    """
    p = 0 if prompt_ids is None else prompt_ids.numel()
    if generator.max_positions is not None:
        room = generator.max_positions - p
        if room < 1:
            raise ValueError(f"the prompt fills all {generator.max_positions} positions of the model; shorten it")
        steps = min(steps, room)
    prompt = None if prompt_ids is None or p == 0 else prompt_ids.view(1, -1).expand(n, -1).to(generator.device)
    logits, state = generator.encode(prompt, batch_size=n)
    return decode(generator.step, state, logits, steps, eos_token_id=generator.eos_token_id,
                  pad_token_id=generator.pad_token_id, temperature=temperature, top_k=top_k, top_p=top_p,
                  generator=torch.Generator().manual_seed(seed), logits_processor=processor)


def mean_log_prob(generator, ids: torch.Tensor, prompt_ids: torch.Tensor | None = None) -> torch.Tensor:
    """``(N,)`` mean log-probability (nats per token, EOS included) of continuations ``ids`` ``(N, T)``.

    Padding after the first EOS is not counted; ``prompt_ids`` ``(P,)`` conditions them.
    """
    from gan_writer.sampling import mask_after_eos

    mask = mask_after_eos(ids, generator.eos_token_id)
    pre = torch.empty(ids.size(0), 0, dtype=ids.dtype, device=ids.device)
    if prompt_ids is not None and prompt_ids.numel():
        pre = prompt_ids.view(1, -1).expand(ids.size(0), -1).to(ids.device)
    full = torch.cat([pre, ids], 1)
    with torch.no_grad():
        lp = generator.log_probs(full, torch.cat([torch.ones_like(pre), mask], 1))
    weight = torch.cat([torch.zeros_like(pre), mask], 1).to(lp.dtype)
    return (lp * weight).sum(1) / weight.sum(1).clamp(min=1)
