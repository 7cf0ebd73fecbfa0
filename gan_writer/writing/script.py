"""Scripts written hierarchically, as Dramatron (Mirowski et al. 2023, "Co-Writing Screenplays
and Theatre Scripts with Language Models"): logline → title → characters (given) → scene
outline (place, plot beat) → dialogue per scene, each level generated from a prompt that
holds the levels above it.

The structure holds whatever the model: every speaker is taken from the character list
(the next speaker is, among the listed characters other than the last speaker who have
spoken least in the scene, the one whose ``NAME:`` the generator finds likeliest after the
scene so far), each scene has its heading, beat and
``turns`` speeches, and a speech that loops (an empty one, a repeat of an earlier speech
in the script, or one whose distinct-2 is below 0.5) is drawn again up to
``MAX_RETRIES`` times with a new seed. Output is Fountain (https://fountain.io/syntax) or
plain text. Prompt pieces outside the checkpoint's vocabulary are dropped (counted in the
report); with a small poetry model the prose is weak but the structure is exact.

The prompt head (:func:`cast_header`), the turn rule (:func:`speaker_options`) and the cue
scoring (:func:`likeliest_speaker`) also serve co-written scripts with a cast
(``gan-writer cowrite --characters``, :class:`gan_writer.cowrite.generator.ModelGenerator`).
"""
from __future__ import annotations

import math
import re
import unicodedata

import torch

from gan_writer.writing.constraints import constrained_sample, mean_log_prob
from gan_writer.writing.safety import SafetyFilter, check_mode
from gan_writer.writing.story import clean

MAX_RETRIES = 3
MAX_SCENES, MAX_TURNS = 50, 100  # write script's bounds (each turn is one generator call)


def parse_characters(spec: str) -> list[tuple[str, str]]:
    """``"NAME: description; NAME: description"`` → ``[(NAME, description), ...]``; entries
    may also be given one per line (``--characters "$(cat cast.txt)"``).

    Raises:
        ValueError: for an empty list, an entry without ``NAME:``, or a name
            :func:`check_characters` refuses.
    """
    entries = [e.strip() for e in re.split(r"[;\n\r]", spec) if e.strip()]
    if not entries:
        raise ValueError('--characters is empty; give at least one, e.g. --characters "ANNA: a sailor; BEN: her brother"')
    out = []
    for e in entries:
        name, sep, desc = e.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--characters entry {e!r} has no 'NAME:'; write NAME: description")
        out.append((name.strip(), desc.strip()))
    check_characters(out)
    return out


def name_key(name: str) -> str:
    """The form under which two character names are the same: Unicode-normalised (NFKC, so a
    composed and a decomposed ``é`` agree) and case-folded (``Straße`` = ``STRASSE``)."""
    return unicodedata.normalize("NFKC", name).casefold()


def check_characters(characters, what: str = "--characters") -> None:
    """Refuse a cast whose names are not distinct (:func:`name_key`), not one printable line of
    1 to 40 characters, or hold a ``:``, or whose descriptions are not one printable line;
    ``what`` names the source in the message.

    Raises:
        ValueError: naming the entry and what to change.
    """
    seen = set()
    for name, desc in characters:
        if not isinstance(name, str) or not isinstance(desc, str):
            raise ValueError(f"{what}: a character is not a name and a description (strings)")
        if not name.strip() or name != name.strip() or ":" in name or not name.isprintable() or len(name) > 40:
            raise ValueError(f"{what} name {name[:50]!r} must be one printable line of 1 to 40 characters "
                             "without ':' or surrounding spaces")
        if not desc.isprintable():
            raise ValueError(f"{what}: the description of {name!r} must be one printable line (it holds a line break "
                             "or a control character); separate characters with ';'")
        if name_key(name) in seen:
            raise ValueError(f"{what} names {name!r} twice; names must be distinct")
        seen.add(name_key(name))


def check_logline(logline: str, what: str = "--logline") -> None:
    """Refuse a logline that is not one printable line (a line break would start a new key on
    the Fountain title page and a new line in every prompt).

    Raises:
        ValueError: naming ``what``.
    """
    if not logline.isprintable():
        raise ValueError(f"{what} must be one line of plot (it holds a line break or a control character); "
                         "join it into one sentence")


def cast_header(title: str, logline: str, characters) -> str:
    """The prompt's head above the scenes or lines: the title and the logline (each on its own
    line when not empty), then one ``NAME: description`` line per character."""
    return "".join(f"{x}\n" for x in (title, logline) if x) + "".join(f"{n}: {d}\n" for n, d in characters)


def speaker_of(line: str, names) -> str | None:
    """The listed name ``line`` is spoken by (``NAME: speech``, the name matched by
    :func:`name_key`), in the list's spelling, or None."""
    head, sep, _ = line.partition(":")
    if not sep:
        return None
    head = name_key(head.strip())
    return next((n for n in names if name_key(n) == head), None)


def looks_like_cue(text: str) -> bool:
    """Whether the text before a ``:`` can be a speaker's name in a script without a cast: one
    to three words of letters (``ANNA``, ``OLD MARY``, ``李白``), at most 30 characters; a
    passage that merely holds a colon (``the are as said ‘ hair: ...``) cannot."""
    words = text.split()
    return 0 < len(words) <= 3 and len(text) <= 30 and all(re.fullmatch(r"[^\W\d_][\w.'-]*", w) for w in words)


def speaker_options(names: list[str], last: str | None, turns: dict[str, int], avoid: str | None = None) -> list[str]:
    """Dramatron's turn rule as used here: the listed names other than ``last`` (the previous
    speaker) and ``avoid`` (the next one, when a line is inserted), among them those with the
    fewest ``turns`` so far, in list order; all names if that leaves none."""
    others = [n for n in names if n not in (last, avoid)] or [n for n in names if n != last] or list(names)
    fewest = min(turns.get(n, 0) for n in others)
    return [n for n in others if turns.get(n, 0) == fewest]


def likeliest_speaker(gen, tok, context: torch.Tensor, options: list[str]) -> str:
    """The option whose ``\nNAME:`` ``gen`` finds likeliest after ``context`` (1-D token ids;
    sum of log-probs in nats, the earlier option on a tie); one forward pass per option.

    Raises:
        ValueError: if ``options`` is empty.
    """
    if not options:
        raise ValueError("likeliest_speaker needs at least one name")
    if len(options) == 1:
        return options[0]
    scores = []
    for name in options:
        tail = [i for i in tok(f"\n{name}:", add_special_tokens=False)["input_ids"] if i != tok.unk_token_id]
        full = torch.cat([context, torch.tensor(tail or [gen.eos_token_id], dtype=torch.long)])[None]
        if gen.max_positions is not None:
            full = full[:, -gen.max_positions:]
        with torch.no_grad():
            lp = gen.log_probs(full)[0, full.size(1) - len(tail or [0]):].sum()
        scores.append(float(lp))
    return options[max(range(len(options)), key=lambda i: (scores[i], -i))]


class _Writer:
    """Draws short continuations of prompts with one generator (pieces outside the vocabulary dropped)."""

    def __init__(self, art, temperature: float, seed: int) -> None:
        self.tok, self.gen, self.temperature, self.seed = art.tokenizer, art.generator, temperature, seed
        self.dropped = 0
        self.calls = 0

    def encode(self, text: str, room: int) -> torch.Tensor:
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        unk = self.tok.unk_token_id
        kept = [i for i in ids if i != unk]
        self.dropped += len(ids) - len(kept)
        if self.gen.max_positions is not None:
            kept = kept[-max(0, self.gen.max_positions - room):]
        return torch.tensor(kept, dtype=torch.long)

    def draw(self, prompt: str, tokens: int) -> tuple[str, float]:
        """One continuation of ``prompt`` (its first line) and its mean log-prob (nats/token)."""
        if self.gen.max_positions is not None:
            tokens = min(tokens, max(1, self.gen.max_positions // 2))
        ids = self.encode(prompt, tokens)
        self.calls += 1
        out = constrained_sample(self.gen, 1, tokens, None, ids, temperature=self.temperature,
                                 seed=self.seed * 100003 + self.calls)
        lp = float(mean_log_prob(self.gen, out, ids)[0])
        text = clean(self.tok.decode(out[0].tolist(), skip_special_tokens=True))
        return text.split("\n")[0].strip(), lp

    def next_speaker(self, context: str, names: list[str], last: str | None, turns: dict[str, int]) -> str:
        """:func:`likeliest_speaker` among :func:`speaker_options` (so every character gets to speak)."""
        return likeliest_speaker(self.gen, self.tok, self.encode(context, 8), speaker_options(names, last, turns))


def tidy(text: str) -> str:
    """``text`` without its leading punctuation and the stray quotes left by a continuation
    that starts mid-sentence (a speech after ``NAME:``)."""
    return re.sub(r"^[\W_]+", "", text).replace("“", "").replace("”", "").strip()


def _loops(line: str, earlier: list[str]) -> bool:
    words = line.split() if " " in line else list(line)
    grams = list(zip(words, words[1:]))
    return not line or line in earlier or (len(grams) >= 4 and len(set(grams)) / len(grams) < 0.5)


def fountain_cue(name: str) -> str:
    """A character name as a Fountain cue (https://fountain.io/syntax#charater): upper case,
    with the ``@`` forcing mark unless it is plain ASCII letters (``JOSÉ`` and ``李白`` are
    forced) or when it would read as a scene heading (``INT. HOUSE``)."""
    cue = name.upper()
    plain = re.fullmatch(r"[A-Za-z][A-Za-z .'-]*", name) and not re.match(r"(INT|EXT|EST|INT\./EXT|I/E)[. ]", cue)
    return cue if plain else "@" + cue


def fountain_cast_note(characters) -> str:
    """The cast ``[(NAME, description), ...]`` as one Fountain note ``[[Characters: ANNA - a
    sailor; BEN]]`` (a ``]]`` inside a description would end the note: it is split)."""
    cast = "; ".join(f"{fountain_cue(n)} - {d}" if d else fountain_cue(n) for n, d in characters)
    return f"[[Characters: {cast.replace(']]', '] ]')}]]"


def render(title: str, logline: str, characters, scenes: list[dict], fmt: str = "fountain") -> str:
    """The script as Fountain (title page, ``INT.`` headings, action, CHARACTER/dialogue) or plain text."""
    if fmt == "text":
        out = [title, logline, ""] + [f"{n}: {d}" for n, d in characters] + [""]
        for k, sc in enumerate(scenes):
            out += [f"SCENE {k + 1}: {sc['place']}", sc["beat"], ""]
            out += [f"{t['speaker']}: {t['line']}" for t in sc["dialogue"]] + [""]
        return "\n".join(out).rstrip() + "\n"
    out = [f"Title: {title}", "Credit: written with gan-writer", f"Notes: {logline}", ""]
    out += [fountain_cast_note(characters), ""]
    for sc in scenes:
        out += [f"INT. {sc['place'].upper() or 'SOMEWHERE'} - DAY", "", sc["beat"] or "...", ""]
        for t in sc["dialogue"]:
            out += [fountain_cue(t["speaker"]), t["line"], ""]
    return "\n".join(out).rstrip() + "\n"


def write_script(art, logline: str, characters: list[tuple[str, str]], scenes: int = 3, turns: int = 4,
                 seed: int = 0, safety: str = "flag", temperature: float = 1.0, fmt: str = "fountain",
                 safety_filter: SafetyFilter | None = None) -> dict:
    """A script with ``scenes`` scenes of ``turns`` speeches among ``characters``.

    Returns:
        ``{"text", "report", "score"}``: the Fountain (or plain) text; the report has
        ``title``, ``characters``, ``outline`` (place, beat per scene), ``scenes``,
        ``turns``, ``speakers`` (the names that spoke), ``retries``, ``repetitive`` (speeches
        still looping after the retries), ``dropped_prompt_pieces`` and ``safety``; the
        score is the geometric-mean token probability of the speeches, in (0, 1].

    Raises:
        ValueError: an empty logline or character list, ``scenes``/``turns`` < 1 or above
            ``MAX_SCENES``/``MAX_TURNS``, a bad mode.
    """
    check_mode(safety)
    if not logline.strip():
        raise ValueError("--logline is empty; give one sentence of plot")
    check_logline(logline)
    if not characters:
        raise ValueError("the character list is empty; give at least one character")
    if scenes < 1 or turns < 1:
        raise ValueError(f"--scenes and --turns must be at least 1, got {scenes} and {turns}")
    if scenes > MAX_SCENES or turns > MAX_TURNS:
        raise ValueError(f"--scenes must be at most {MAX_SCENES} and --turns at most {MAX_TURNS} (each turn is one "
                         f"generator call), got {scenes} and {turns}; write a longer script scene by scene with "
                         "gan-writer cowrite")
    filt = safety_filter or SafetyFilter()
    w = _Writer(art, temperature, seed)
    names = [n for n, _ in characters]
    title = re.split(r"[，。,.!?:;\n]", w.draw(f"{logline}\n", 8)[0])[0].strip() or logline.split(".")[0][:40]
    head = cast_header(title, logline, characters)
    out_scenes, retries, repetitive, lps, spoken = [], 0, 0, [], []
    for k in range(scenes):
        place = " ".join(re.sub(r"[^\w\s'-]", " ", w.draw(f"{head}Scene {k + 1}. Place:", 6)[0]).split()[:5])
        beat = tidy(w.draw(f"{head}Scene {k + 1}. Place: {place}\nBeat:", 24)[0])
        context, dialogue, last, count = f"{head}{place}\n{beat}\n", [], None, {}
        for _ in range(turns):
            speaker = w.next_speaker(context, names, last, count)
            count[speaker] = count.get(speaker, 0) + 1
            for attempt in range(MAX_RETRIES + 1):
                line, lp = w.draw(f"{context}{speaker}:", 24)
                line = tidy(line)
                bad = _loops(line, spoken) or (safety == "block" and filt.check(line).flagged)
                if not bad:
                    break
                if attempt < MAX_RETRIES:
                    retries += 1
            repetitive += bad
            dialogue.append({"speaker": speaker, "line": line or "..."})
            spoken.append(line)
            lps.append(lp)
            context += f"{speaker}: {line}\n"
            last = speaker
        out_scenes.append({"place": place, "beat": beat, "dialogue": dialogue})
    text = render(title, logline, characters, out_scenes, fmt)
    report = {
        "title": title, "characters": [{"name": n, "description": d} for n, d in characters],
        "outline": [{"place": s["place"], "beat": s["beat"]} for s in out_scenes],
        "scenes": len(out_scenes), "turns": sum(len(s["dialogue"]) for s in out_scenes),
        "speakers": sorted({t["speaker"] for s in out_scenes for t in s["dialogue"]}),
        "retries": retries, "repetitive": repetitive, "dropped_prompt_pieces": w.dropped,
        "format": fmt, "safety": filt.check(text).to_dict(),
    }
    return {"text": text, "report": report, "score": round(math.exp(sum(lps) / len(lps)), 4)}
