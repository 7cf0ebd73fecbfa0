"""Logits processors for co-writing, compatible with :func:`gan_writer.sampling.decode`.

Every processor is ``processor(drawn (N, i), logits (N, V)) -> logits (N, V)``:

* :class:`SteerBan` adds a logit bias to the tokens of steering keywords and bans words
  (a banned word's last token gets ``-inf`` when the tokens before it were just drawn, as
  Hugging Face's ``NoBadWordsLogitsProcessor``; single-token words are always banned).
* :class:`PrefixedForm` runs a :class:`gan_writer.writing.constraints.FormProcessor` as if the
  poem so far had been drawn (so a line continues the form where the writer stopped) and
  ends the draw after ``units`` more lines.
* :class:`ScriptLines` keeps a script piece to a number of lines, none empty or overlong.
* :class:`Watch` reports progress and raises :class:`Cancelled` when asked to stop.
* :func:`chain` applies several in order.

No processor ever leaves a row without a finite logit: a ban that would is skipped for that row.
"""
from __future__ import annotations

import threading
from typing import Callable, Sequence

import torch

from gan_writer.writing.forms import LINE_END

NEG = float("-inf")


class Cancelled(RuntimeError):
    """Raised inside decoding when the writer cancels a generation."""


def word_ids(tokenizer, words: Sequence[str]) -> list[list[int]]:
    """Token ids of each word (no special tokens; unknown pieces dropped); empty words skipped."""
    out = []
    for w in words:
        ids = [i for i in tokenizer(w, add_special_tokens=False)["input_ids"] if i != tokenizer.unk_token_id]
        if w.strip() and ids:
            out.append(ids)
    return out


class SteerBan:
    """Keyword steering (logit bias) and banned words (bad words) for one draw.

    Args:
        steer: ``[[ids], ...]`` token ids of each steering keyword; every token of a keyword
            gets ``+bias`` (nats, added to the logits before temperature).
        ban: ``[[ids], ...]`` token ids of each banned word.
        bias: the steering bias (default 2.0).
    """

    def __init__(self, steer: list[list[int]], ban: list[list[int]], bias: float = 2.0) -> None:
        self.steer = sorted({i for ids in steer for i in ids})
        self.ban, self.bias = ban, bias

    def __call__(self, drawn: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        out = logits.clone()
        if self.steer:
            idx = torch.tensor([i for i in self.steer if i < out.size(1)], dtype=torch.long)
            out[:, idx] += self.bias
        for ids in self.ban:
            *head, last = ids
            if last >= out.size(1):
                continue
            for r in range(out.size(0)):
                if head and (drawn.size(1) < len(head) or drawn[r, -len(head):].tolist() != head):
                    continue
                if bool(torch.isfinite(out[r]).sum() > int(torch.isfinite(out[r, last]))):
                    out[r, last] = NEG
        return out


class PrefixedForm:
    """A form processor that sees ``prefix_text`` before the drawn tokens and stops after ``units`` lines.

    Args:
        form_processor: a :class:`gan_writer.writing.constraints.FormProcessor` (its
            ``allowed(text)`` gives the ``(V,)`` mask after ``text``).
        tokenizer: decodes the drawn ids.
        prefix_text: the poem so far (the writer's and the model's lines).
        units: lines to draw, or None for the rest of the poem.
        eos_token_id: forced once ``units`` lines are drawn.
    """

    def __init__(self, form_processor, tokenizer, prefix_text: str, units: int | None, eos_token_id: int) -> None:
        self.proc, self.tok, self.prefix, self.units, self.eos = form_processor, tokenizer, prefix_text, units, eos_token_id
        self.zh = form_processor.form.language == "zh"

    def lines_in(self, text: str) -> int:
        return sum(text.count(m) for m in LINE_END) if self.zh else text.count("\n")

    def __call__(self, drawn: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        texts = self.tok.batch_decode(drawn.tolist(), skip_special_tokens=True) if drawn.size(1) else [""] * drawn.size(0)
        masks = []
        for t in texts:
            if self.units is not None and self.lines_in(t) >= self.units:
                m = torch.zeros(logits.size(1), dtype=torch.bool)
                m[self.eos] = True
            else:
                m = self.proc.allowed(self.prefix + t)[: logits.size(1)]
                if m.numel() < logits.size(1):
                    m = torch.cat([m, torch.zeros(logits.size(1) - m.numel(), dtype=torch.bool)])
            masks.append(m)
        return logits.masked_fill(~torch.stack(masks).to(logits.device), NEG)


class ScriptLines:
    """A script piece of ``units`` lines, none empty and none over ``line_tokens`` tokens: a
    line break (any of ``newline_ids``) is refused at a line's start and forced once the line
    has ``line_tokens`` tokens; EOS is refused until the last line has begun and forced once
    it is full (or broken).

    Args:
        newline_ids: the vocabulary's line-break tokens
            (:attr:`gan_writer.writing.constraints.TokenTable.newline`).
        units: lines wanted; line_tokens: the most tokens of one line.
        eos_token_id: the generator's EOS (None: the draw runs to its step budget).
    """

    def __init__(self, newline_ids: Sequence[int], units: int, line_tokens: int, eos_token_id: int | None) -> None:
        self.newline = sorted(set(newline_ids))
        self.units, self.line_tokens, self.eos = units, line_tokens, eos_token_id

    def _only(self, row: torch.Tensor, ids: list[int]) -> None:
        keep = torch.full_like(row, NEG)
        keep[ids] = row[ids]
        if torch.isfinite(keep).any():  # never a row without a finite logit
            row.copy_(keep)

    def __call__(self, drawn: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        out = logits.clone()
        if not self.newline:
            return out
        eos = [] if self.eos is None else [self.eos]
        breaks = torch.isin(drawn, torch.tensor(self.newline, dtype=drawn.dtype, device=drawn.device))
        for r in range(drawn.size(0)):
            where = torch.nonzero(breaks[r]).flatten()
            done, since = where.numel(), drawn.size(1) - (int(where[-1]) + 1 if where.numel() else 0)
            if done >= self.units or (since >= self.line_tokens and done + 1 >= self.units):
                self._only(out[r], eos)
            elif since >= self.line_tokens:
                self._only(out[r], self.newline)
            elif since == 0 or done + 1 < self.units:
                banned = self.newline + eos if since == 0 else eos
                if torch.isfinite(out[r]).sum() > torch.isfinite(out[r, banned]).sum():
                    out[r, banned] = NEG
        return out


class Watch:
    """Calls ``progress(i, steps)`` before each draw and raises :class:`Cancelled` once ``cancel`` is set."""

    def __init__(self, steps: int, progress: Callable[[int, int], None] | None = None,
                 cancel: threading.Event | None = None) -> None:
        self.steps, self.progress, self.cancel = steps, progress, cancel

    def __call__(self, drawn: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("generation cancelled by the writer")
        if self.progress is not None:
            self.progress(drawn.size(1), self.steps)
        return logits


def chain(*processors):
    """One processor applying ``processors`` (None entries skipped) in order; None if all are None."""
    procs = [p for p in processors if p is not None]
    if not procs:
        return None

    def run(drawn: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        for p in procs:
            logits = p(drawn, logits)
        return logits
    return run
