"""``gan-writer write poem|story|script --ckpt X``: the writers' front (see gan_writer.writing).

Every sub-command prints its pieces with their reports, or with ``--json`` a JSON list of
``{"text", "report", "score"}`` objects (one per poem, per ending, or one for the script).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gan_writer.commands.tool_parser import seed as seed_type
from gan_writer.writing.forms import FORMS, format_report
from gan_writer.writing.safety import MODES


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="a gan_writer .ckpt or run directory")
    p.add_argument("--seed", type=seed_type, default=0, help="random seed (same seed, same text)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default 1.0)")
    p.add_argument("--safety", choices=MODES, default="flag",
                   help="flag: show flagged spans; rerank: push flagged drafts down; block: resample them")
    p.add_argument("--disc", default=None,
                   help="a checkpoint holding a discriminator whose score joins the reranking (default: none)")
    p.add_argument("--json", action="store_true", help='print a JSON list of {"text", "report", "score"}')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", required=True, metavar="{poem,story,script}")
    poem = sub.add_parser("poem", help="poems in a chosen form")
    _common(poem)
    poem.add_argument("--form", required=True, help=f"one of {', '.join(FORMS)}")
    poem.add_argument("--rhyme", default=None, help="English rhyme scheme, one letter per line (X unrhymed), e.g. ABAB")
    poem.add_argument("--keywords", default="", help="comma-separated words the poems should contain, e.g. 月,江")
    poem.add_argument("--title", default=None, help="a title printed with each poem")
    poem.add_argument("--n", type=int, default=3, help="poems to print (default 3)")
    poem.add_argument("--candidates", type=int, default=16,
                      help="drafts to rerank (default 16; raised to --n when smaller, so every poem printed is a draft)")
    poem.add_argument("--image", default=None,
                      help="a photo to write about (needs an image-conditioned --ckpt, see experiments/image_poem)")
    poem.add_argument("--image-encoder", default=None,
                      help="local directory of the vision model the image-conditioned checkpoint was trained with")
    poem.add_argument("--strict-rhyme", action="store_true",
                      help="Chinese forms: make the 平水韵 rhyme of the even lines a hard constraint (default: reranked)")
    story = sub.add_parser("story", help="alternative endings to a beginning")
    _common(story)
    story.add_argument("--beginning", required=True, help="the story so far, or @FILE to read it from a file")
    story.add_argument("--endings", type=int, default=3, help="endings to print (default 3)")
    story.add_argument("--candidates", type=int, default=None,
                       help="drafts to choose from (default 4 x endings; raised to --endings when smaller)")
    story.add_argument("--length", type=int, default=120, help="tokens per ending at most (default 120)")
    script = sub.add_parser("script", help="a screenplay from a logline and characters (Dramatron-style)")
    _common(script)
    script.add_argument("--logline", required=True, help="one sentence of plot")
    script.add_argument("--characters", required=True, help='"NAME: description; NAME: description"')
    script.add_argument("--scenes", type=int, default=3, help="number of scenes (default 3)")
    script.add_argument("--turns", type=int, default=4, help="dialogue turns per scene (default 4)")
    script.add_argument("--format", choices=("fountain", "text"), default="fountain", help="output format")


def read_text_option(option: str, value: str) -> str:
    """``value``, or with ``@FILE`` the text of FILE (UTF-8, stripped): the reader of every
    ``@FILE`` option of the writing tools.

    Raises:
        FileNotFoundError: FILE does not exist. ValueError: FILE is not UTF-8 text or cannot be read.
    """
    if not value.startswith("@"):
        return value
    path = Path(value[1:])
    if path.is_dir():
        raise ValueError(f"{option} {value}: {path} is a folder; give @FILE, a UTF-8 text file")
    if not path.is_file():
        raise FileNotFoundError(f"{option} {value}: no such file {path}")
    try:
        return path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError as err:
        raise ValueError(f"{option} {value}: {path} is not UTF-8 text (byte {err.object[err.start]:#04x} at "
                         f"position {err.start}); save it as UTF-8 and try again") from None
    except OSError as err:
        raise ValueError(f"{option} {value}: cannot read {path} ({err.strerror or err})") from None


def _read_beginning(value: str) -> str:
    return read_text_option("--beginning", value)


def _discriminator(args: argparse.Namespace, art):
    """The ``--disc`` discriminator, refused when it was trained with another vocabulary than ``art``'s generator."""
    if not args.disc:
        return None
    from gan_writer.systems.discriminator import load_discriminator

    return load_discriminator(args.disc, vocab_size=getattr(art.generator, "vocab_size", None), tokenizer=art.tokenizer,
                              name=f"--disc {args.disc}", scorer_of=f"the generator of --ckpt {args.ckpt}")


def _note_raised_candidates(args: argparse.Namespace) -> None:
    """One line on stderr when ``--candidates`` is below the pieces asked for (it is raised to them)."""
    wanted = {"poem": ("--n", getattr(args, "n", None)), "story": ("--endings", getattr(args, "endings", None))}.get(args.what)
    if wanted and wanted[1] is not None and args.candidates is not None and args.candidates < wanted[1]:
        print(f"gan-writer write {args.what}: note: --candidates {args.candidates} is raised to {wanted[0]} "
              f"{wanted[1]} (every piece printed is a draft)", file=sys.stderr)


def _check_counts(args: argparse.Namespace) -> None:
    """Refuse counts below 1 or above their bounds before any note or load."""
    from gan_writer.writing.script import MAX_SCENES, MAX_TURNS
    from gan_writer.writing.story import MAX_DRAFTS

    counts = {"poem": ("--n", "--candidates"), "story": ("--endings", "--candidates", "--length"),
              "script": ("--scenes", "--turns")}[args.what]
    for option in counts:
        value = getattr(args, option[2:])
        if value is not None and value < 1:
            raise ValueError(f"{option} must be at least 1, got {value}")
        if value is not None and option in ("--n", "--endings", "--candidates") and value > MAX_DRAFTS:
            raise ValueError(f"{option} must be at most {MAX_DRAFTS} (drafts are sampled in one batch), got {value}")
    if args.what == "script" and (args.scenes > MAX_SCENES or args.turns > MAX_TURNS):
        raise ValueError(f"--scenes must be at most {MAX_SCENES} and --turns at most {MAX_TURNS} (each turn is one "
                         f"generator call), got {args.scenes} and {args.turns}; write a longer script scene by "
                         "scene with gan-writer cowrite")


def _check_early(args: argparse.Namespace) -> None:
    """Refuse bad options before the (slow) checkpoint load."""
    _check_counts(args)
    if args.what == "poem":
        from gan_writer.writing.forms import get_form

        get_form(args.form, args.rhyme)
    elif args.what == "script":
        from gan_writer.writing.script import parse_characters

        parse_characters(args.characters)
    elif args.what == "story":
        _read_beginning(args.beginning)


def _load(args: argparse.Namespace):
    """The checkpoint's :class:`~gan_writer.checkpoint.Artifacts`; with ``--image`` its generator
    is bound to the photo (:func:`gan_writer.multimodal.load_for_image`)."""
    from gan_writer.checkpoint import Artifacts, load_artifacts, resolve_checkpoint

    if getattr(args, "image", None):
        from gan_writer.multimodal import load_for_image

        generator, tokenizer = load_for_image(args.ckpt, args.image, args.image_encoder)
        return Artifacts(generator, tokenizer, {"path": str(resolve_checkpoint(args.ckpt)), "image": str(args.image)})
    if getattr(args, "image_encoder", None):
        raise ValueError("--image-encoder needs --image PHOTO")
    art = load_artifacts(args.ckpt)
    if type(art.generator).__name__ == "ImagePrefixGenerator":
        raise ValueError(f"{art.meta.get('path')} is image-conditioned: pass --image PHOTO --image-encoder DIR")
    return art


def _results(args: argparse.Namespace) -> list[dict]:
    _check_early(args)
    art = _load(args)
    print(f"checkpoint: {art.meta.get('path')}", file=sys.stderr)
    if art.tokenizer is None:
        raise ValueError(f"{args.ckpt} has no tokenizer (an oracle checkpoint?); write needs a text model")
    disc = _discriminator(args, art)
    _note_raised_candidates(args)
    args.tokenizer = art.tokenizer  # the human output shows its text as a writer reads it
    if args.what == "poem":
        from gan_writer.writing.poem import write_poems

        keywords = [k.strip() for k in args.keywords.split(",")] if args.keywords.strip() else []
        return write_poems(art, args.form, args.rhyme, keywords, args.title, args.n, args.candidates, args.seed,
                           args.safety, args.temperature, disc, strict_rhyme=args.strict_rhyme)
    if args.what == "story":
        from gan_writer.writing.story import write_endings

        return write_endings(art, _read_beginning(args.beginning), args.endings, args.length, args.candidates,
                             args.seed, args.safety, args.temperature, disc)
    from gan_writer.writing.script import parse_characters, write_script

    return [write_script(art, args.logline, parse_characters(args.characters), args.scenes, args.turns, args.seed,
                         args.safety, args.temperature, args.format)]


def plural(n: int, noun: str) -> str:
    """``"1 scene"``, ``"3 scenes"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _note_fitted(args: argparse.Namespace, results: list[dict]) -> None:
    """One line on stderr when the beginning and ``--length`` did not fit the generator's window."""
    if args.what != "story" or not results:
        return
    rep = results[0]["report"]
    stats, window = rep["set"], rep["set"].get("max_positions")
    if stats["length"] < args.length:
        print(f"gan-writer write story: note: --length {args.length} is cut to {stats['length']} tokens: the "
              f"generator holds {window} positions and the beginning takes {stats['beginning_tokens']}", file=sys.stderr)
    dropped = stats["beginning_tokens"] - rep["prompt_tokens"]
    if dropped > 0:
        print(f"gan-writer write story: note: the beginning's first {dropped} of {stats['beginning_tokens']} tokens "
              f"are left out (the generator holds {window} positions; the endings follow its last "
              f"{rep['prompt_tokens']})", file=sys.stderr)


def ending_label(i: int) -> str:
    """The label of the ``i``-th ending (0-based), as spreadsheet columns: A … Z, AA, AB, …"""
    label = ""
    i += 1
    while i:
        i, rest = divmod(i - 1, 26)
        label = chr(ord("A") + rest) + label
    return label


def _print_human(what: str, results: list[dict], tokenizer=None) -> None:
    from gan_writer.writing.readable import readable_for

    for i, res in enumerate(results):
        rep = res["report"]
        res = {**res, "text": readable_for(tokenizer, res["text"])}
        if what == "poem":
            head = f"== poem {i + 1} (score {res['score']:.3f})" + (f": {rep['title']}" if rep.get("title") else "")
            print(head)
            print(res["text"])
            print(format_report(rep))
            if "keywords" in rep:
                kw = rep["keywords"]
                print("  keywords: " + "; ".join(part for part in (
                    "found " + ", ".join(kw["found"]) if kw["found"] else "",
                    "missing " + ", ".join(kw["missing"]) if kw["missing"] else "") if part))
        elif what == "story":
            print(f"== ending {ending_label(i)} (score {res['score']:.3f}; {rep['tokens']} tokens, "
                  f"mean log-prob {rep['mean_log_prob']:.2f} nats/token)")
            print(res["text"])
        else:
            print(res["text"])
            print(f"-- {plural(rep['scenes'], 'scene')}, {plural(rep['turns'], 'turn')}, speakers {', '.join(rep['speakers'])}; "
                  f"retries {rep['retries']}", file=sys.stderr)
        flagged = rep.get("safety", {}).get("spans") or []
        if flagged:
            print("  safety: flagged " + ", ".join(f"{s['text']!r} ({s['source']})" for s in flagged))
        print()
    if what == "story" and results:
        print(f"endings: distinct-2 {results[0]['report']['set']['distinct_2']:.3f}, "
              f"Self-BLEU-2 {results[0]['report']['set']['self_bleu_2']:.3f} among the chosen")


def run(args: argparse.Namespace) -> int:
    try:
        results = _results(args)
    except (FileNotFoundError, ValueError, ModuleNotFoundError) as err:
        from gan_writer.commands.errors import report

        return report(f"gan-writer write {args.what}", err)
    _note_fitted(args, results)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=1))
    else:
        _print_human(args.what, results, getattr(args, "tokenizer", None))
    return 0
