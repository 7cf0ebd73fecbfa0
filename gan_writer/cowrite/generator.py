"""What a co-writing session asks of a model: candidates for the next piece of a document.

:class:`CandidateGenerator` is the interface (tests plug in a deterministic stub);
:class:`ModelGenerator` implements it with a checkpoint's generator and the writing
tools of ``gan-writer write``: the form's hard constraints
(:class:`gan_writer.writing.constraints.FormProcessor`, continued from the poem so far),
the form report of each candidate, reranking (:func:`gan_writer.writing.rerank.rerank`),
diverse endings (:func:`gan_writer.writing.story.select_diverse`) and the safety filter.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

from gan_writer.cowrite.decoding import PrefixedForm, ScriptLines, SteerBan, Watch, chain, word_ids
from gan_writer.writing.constraints import FormProcessor, constrained_sample, max_tokens, mean_log_prob, token_table
from gan_writer.writing.forms import LINE_END, form_report, get_form
from gan_writer.writing.rerank import rerank
from gan_writer.writing import rhyme as R
from gan_writer.writing.safety import SafetyFilter
from gan_writer.writing.script import likeliest_speaker, looks_like_cue, speaker_of, speaker_options, tidy
from gan_writer.writing.story import select_diverse

MAX_CANDIDATES = 64  # per request: each draws draft_factor x k samples at once


@dataclass
class Request:
    """One request for candidates.

    Attributes:
        kind: ``poem`` | ``story`` | ``script``.
        form: the poem's form name (see :data:`gan_writer.writing.forms.FORMS`) or None.
        prefix: the document before the piece (its lines joined as in the document).
        units: lines (poems, scripts) or passages (stories) to write; None: to the end.
        suffix: text after the piece (a rewrite or infill), scored but not written.
        k: candidates wanted; seed: sampling seed; temperature: softmax temperature.
        keywords: steering keywords (logit bias, and reranked as in ``write``).
        bans: words never drawn; diverse: pick the ``k`` by maximal marginal relevance (endings).
        progress: ``progress(step, steps)`` while drawing; cancel: set to stop (raises Cancelled).
        header: text above the document in the prompt, never written (a script's title,
            logline and cast, :func:`gan_writer.writing.script.cast_header`).
        cast: a script's character names: each line is then ``NAME: speech``, the speaker
            chosen by :func:`gan_writer.writing.script.speaker_options` and
            :func:`~gan_writer.writing.script.likeliest_speaker`.
    """

    kind: str
    form: str | None
    prefix: str
    units: int | None = 1
    suffix: str = ""
    k: int = 3
    seed: int = 0
    temperature: float = 1.0
    keywords: tuple = ()
    bans: tuple = ()
    diverse: bool = False
    progress: Callable[[int, int], None] | None = field(default=None, repr=False)
    cancel: threading.Event | None = field(default=None, repr=False)
    header: str = ""
    cast: tuple = ()


class CandidateGenerator(Protocol):
    """Anything that turns a :class:`Request` into ranked candidates."""

    def propose(self, request: Request) -> list[dict]:
        """``request.k`` (or fewer distinct) ``{"text", "report", "score"}`` dicts, best first.

        ``text`` is the new piece only (a poem's lines joined by ``\\n``, no trailing one);
        ``report`` holds at least ``safety`` (``SafetyResult.to_dict()``) and, for a poem
        with a form, ``form`` (the form report of the poem with the piece in it).

        Raises:
            ValueError: the request cannot be met (the poem is complete, bad keywords, ...).
            gan_writer.cowrite.decoding.Cancelled: ``request.cancel`` was set.
        """


def lines_of(text: str, zh: bool) -> list[str]:
    """Lines of a drawn poem piece: Chinese split after each ``，``/``。``, English at ``\\n``."""
    if zh:
        out, cur = [], ""
        for c in text.replace("\n", ""):
            cur += c
            if c in LINE_END:
                out.append(cur)
                cur = ""
        return out + ([cur] if cur.strip() else [])
    return [ln.strip() for ln in text.split("\n") if ln.strip()]


class ModelGenerator:
    """:class:`CandidateGenerator` over a checkpoint's :class:`~gan_writer.checkpoint.Artifacts`.

    Args:
        art: generator + tokenizer (``load_artifacts``).
        draft_factor: drafts drawn per wanted candidate (default 3; reranked down to ``k``).
        passage_tokens: tokens per story passage, the most of one script line (default 40;
            a script piece of ``units`` lines is held to that many, :class:`ScriptLines`).
        safety_filter: default :class:`SafetyFilter`.
        strict_rhyme: Chinese forms: the even lines must end on 平水韵 level-tone characters of
            one group (hard, as ``write poem --strict-rhyme``); default reranked only.
    """

    def __init__(self, art, draft_factor: int = 3, passage_tokens: int = 40, safety_filter: SafetyFilter | None = None,
                 strict_rhyme: bool = False):
        self.art, self.tok, self.gen = art, art.tokenizer, art.generator
        self.draft_factor, self.passage_tokens = draft_factor, passage_tokens
        self.filter = safety_filter or SafetyFilter()
        self.strict_rhyme = strict_rhyme

    def _prompt(self, text: str, room: int) -> torch.Tensor:
        ids = [i for i in self.tok(text, add_special_tokens=False)["input_ids"] if i != self.tok.unk_token_id] if text else []
        if self.gen.max_positions is not None:
            ids = ids[-max(0, self.gen.max_positions - room):] if self.gen.max_positions > room else []
        return torch.tensor(ids, dtype=torch.long)

    def _poem_setup(self, req: Request):
        form, scheme = get_form(req.form)
        zh = form.language == "zh"
        done = len(lines_of(req.prefix, zh))
        if form.lines is not None and done >= form.lines:
            raise ValueError(f"the {form.name} already has its {form.lines} lines; rewrite a line, undo, or export")
        units = req.units if req.units is not None else (form.lines - done if form.lines else None)
        if form.lines is not None:
            units = min(units, form.lines - done)
        steps = max_tokens(form, 64)
        if form.lines:
            steps = max(2, steps * units // form.lines + 2)
        proc = FormProcessor(form, self.tok, self.gen.eos_token_id, scheme, strict_rhyme=self.strict_rhyme and zh)
        proc.steps = None  # the budget is this draw's, not the whole poem's
        if not zh and req.suffix.strip() and units is not None:  # a rewrite: rhyme with the fixed lines after it
            proc.after = {done + units + k: R.last_word(line) for k, line in enumerate(lines_of(req.suffix, zh))}
        prefix = req.prefix.replace("\n", "") if zh else (req.prefix + "\n" if req.prefix else "")
        return form, scheme, zh, PrefixedForm(proc, self.tok, prefix, units, self.gen.eos_token_id), steps, prefix

    def unknown_words(self, words) -> list[str]:
        """The ``words`` the tokenizer can only write with its unknown token (none for BPE)."""
        unk = self.tok.unk_token_id
        if unk is None:
            return []
        return [w for w in words if unk in self.tok(w, add_special_tokens=False)["input_ids"]]

    def propose(self, req: Request) -> list[dict]:
        """See :meth:`CandidateGenerator.propose`."""
        if not 1 <= req.k <= MAX_CANDIDATES:
            raise ValueError(f"ask for 1 to {MAX_CANDIDATES} candidates, got {req.k}")
        form, speaker = None, None
        if req.kind == "poem" and req.form:
            form, scheme, zh, form_proc, steps, context = self._poem_setup(req)
        else:
            form_proc, zh = None, False
            steps = self.passage_tokens * (req.units or 3)
            context = req.header + req.prefix
            if req.kind == "script":
                newline = torch.nonzero(token_table(self.tok).newline).flatten().tolist()
                form_proc = ScriptLines(newline, req.units or 3, self.passage_tokens, self.gen.eos_token_id)
            if req.kind == "script" and req.cast:  # scored as prompted: the script, then "\nNAME:"
                context = context.rstrip("\n")
                speaker = self._speaker(req, context, [])
                context = context + f"\n{speaker}:" if context.strip() else f"{speaker}:"
        steer = word_ids(self.tok, req.keywords)
        procs = chain(form_proc, SteerBan(steer, word_ids(self.tok, req.bans)) if (steer or req.bans) else None,
                      Watch(steps, req.progress, req.cancel))
        prompt = self._prompt(context, steps)
        n = max(req.k, req.k * self.draft_factor)
        ids = constrained_sample(self.gen, n, steps, procs, prompt, temperature=req.temperature, seed=req.seed)
        raw = self.tok.batch_decode(ids.tolist(), skip_special_tokens=True)
        texts = [self._piece(t, req, zh, form is not None, speaker) for t in raw]
        lp = mean_log_prob(self.gen, ids, prompt).tolist()
        if req.suffix.strip():
            lp = [(a + b) / 2 for a, b in zip(lp, self._suffix_log_probs(prompt, ids, req.suffix))]
        keep, seen = [], set()
        for i, t in enumerate(texts):
            if t.strip() and t not in seen:
                keep.append(i)
                seen.add(t)
        if not keep:
            raise ValueError("every draft was empty; try another seed or a higher temperature")
        return self._rank(req, form, scheme if form else None, [texts[i] for i in keep], [lp[i] for i in keep])

    def _speaker(self, req: Request, context: str, written: list[str], own: str | None = None) -> str:
        """The speaker of the piece's next line, after the prefix and the ``written`` lines of
        the piece so far: among :func:`speaker_options` (not the previous line's speaker, nor
        the next one's when this is the piece's last line; the fewest lines in the document
        outside the piece), ``own`` (the name the model wrote itself) when it is one of them,
        else the likeliest after ``context`` (:func:`likeliest_speaker`)."""
        before = [ln for ln in req.prefix.split("\n") if ln.strip()] + written
        after = [ln for ln in req.suffix.split("\n") if ln.strip()]
        turns: dict[str, int] = {}
        for ln in before + after:
            who = speaker_of(ln, req.cast)
            turns[who] = turns.get(who, 0) + 1
        last = speaker_of(before[-1], req.cast) if before else None
        final = len(written) + 1 >= (req.units or 3)
        options = speaker_options(list(req.cast), last, turns, speaker_of(after[0], req.cast) if final and after else None)
        if own in options:
            return own
        return likeliest_speaker(self.gen, self.tok, self._prompt(context, 8), options)

    def _piece(self, raw: str, req: Request, zh: bool, poem: bool, speaker: str | None = None) -> str:
        if poem:
            return "\n".join(lines_of(raw, zh))
        if req.kind == "script":
            return self._script_lines(raw, req, speaker)
        return raw.strip() if zh else raw.rstrip()

    def _script_lines(self, raw: str, req: Request, speaker: str | None) -> str:
        """The first ``req.units`` lines (3 for None) of a drawn script piece. With a cast the
        first is ``speaker``'s (the rest of the line after the cue the prompt ended with), and
        each later one is given a speaker by :meth:`_speaker`, its speech being what follows
        the model's own cue, if it wrote one (:func:`speaker_of`, :func:`looks_like_cue`)."""
        wanted = req.units or 3
        drawn = raw.split("\n")
        if speaker is None:
            return "\n".join([ln.strip() for ln in drawn if ln.strip()][:wanted])
        first = tidy(drawn[0])
        if not first:
            return ""
        out, base = [f"{speaker}: {first}"], (req.header + req.prefix).rstrip("\n")
        for line in drawn[1:]:
            if len(out) == wanted:
                break
            head, sep, rest = line.partition(":")
            own = speaker_of(line, req.cast)
            speech = tidy(rest if sep and (own or looks_like_cue(head.strip())) else line)
            if speech:
                who = self._speaker(req, "\n".join(x for x in (base, *out) if x), out, own)
                out.append(f"{who}: {speech}")
        return "\n".join(out)

    def _suffix_log_probs(self, prompt: torch.Tensor, ids: torch.Tensor, suffix: str) -> list[float]:
        """Mean log-prob (nats/token) of ``suffix`` after prompt + each candidate (infill ranking)."""
        suf = self._prompt(suffix, 0)
        out = []
        for row in ids:
            row = row[row != self.gen.pad_token_id]
            row = row[row != self.gen.eos_token_id]
            ctx = torch.cat([prompt, row])
            if self.gen.max_positions is not None:
                ctx = ctx[-max(1, self.gen.max_positions - suf.numel()):]
            out.append(float(mean_log_prob(self.gen, suf[None, : self.gen.max_positions or None], ctx)[0]) if suf.numel() else 0.0)
        return out

    def _rank(self, req: Request, form, scheme, texts: list[str], lp: list[float]) -> list[dict]:
        checks = [self.filter.check(t) for t in texts]
        reports = []
        for t in texts:
            if form is None:
                reports.append(None)
                continue
            poem = "\n".join(x for x in (req.prefix, t, req.suffix) if x)
            rep = form_report(poem, form, scheme)
            lines = rep["lines"]
            partial_ok = (form.lines is None or len(lines) <= form.lines) and all(
                form.chars is None or ln.get("chars", form.chars) == form.chars for ln in lines)
            reports.append({**rep, "line_ok": rep["line_ok"] or partial_ok, "complete": rep["line_ok"]})
        if req.diverse:
            quality = [r.score for r in sorted(rerank(reports, texts, lp, req.keywords), key=lambda r: r.index)]
            order = select_diverse(quality, [list(t) if " " not in t else t.split() for t in texts], req.k)
            ranked = [r for i in order for r in rerank(reports, texts, lp, req.keywords) if r.index == i]
        else:
            ranked = rerank(reports, texts, lp, req.keywords)[: req.k]
        out = []
        for r in ranked:
            rep = {"safety": checks[r.index].to_dict(), "score_parts": r.parts}
            if reports[r.index] is not None:
                rep["form"] = reports[r.index]
            out.append({"text": texts[r.index], "report": rep, "score": r.score})
        return out
