"""``gan-writer cowrite --ckpt X [--session FILE]``: co-write in the terminal (see gan_writer.cowrite.terminal)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gan_writer.commands.tool_parser import seed as seed_type
from gan_writer.writing.forms import FORMS


def add_session_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``cowrite`` and ``studio``."""
    p.add_argument("--ckpt", required=True, help="a gan_writer .ckpt or run directory")
    p.add_argument("--session", default=None,
                   help="session JSON file: opened if it exists, else created; written after every operation")
    p.add_argument("--kind", choices=("poem", "story", "script"), default=None,
                   help="document kind of a new session (default poem; script when --characters or --logline is given)")
    p.add_argument("--form", default=None, help=f"poem form of a new session, one of {', '.join(FORMS)} (default: wujue for a Chinese checkpoint, quatrain for an English one)")
    p.add_argument("--seed", type=seed_type, default=None,
                   help="base seed of a new session (model step j draws with seed + j; default 0)")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature of a new session (default 1.0)")
    p.add_argument("--title", default=None, help="title of a new session, shown in exports")
    p.add_argument("--logline", default=None,
                   help="a new script session's plot in one sentence: in every prompt above the script, and on the "
                        "Fountain title page")
    p.add_argument("--characters", default=None,
                   help='a new script session\'s cast, "NAME: description; NAME: description": every model line is '
                        "then NAME: speech by one of them (not the previous speaker; the least heard first)")
    p.add_argument("--strict-rhyme", action="store_true",
                   help="Chinese forms: the even lines must rhyme (平水韵 level tone, hard); default: reranked")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_session_arguments(parser)


def check_session_path(value: str) -> None:
    """Refuse a ``--session`` whose folder does not exist (before the checkpoint is loaded)."""
    path = Path(value)
    if path.is_dir():
        raise ValueError(f"--session {value} is a folder; give a session file in it, e.g. {path / 'session.json'}")
    if not path.exists() and not path.parent.is_dir():
        raise FileNotFoundError(f"--session {value}: the folder {path.parent} does not exist; "
                                "create it or choose a session file in an existing folder")


def open_session(args: argparse.Namespace):
    """Load the checkpoint and open or create the session. Raises ValueError / FileNotFoundError."""
    from gan_writer.checkpoint import load_artifacts
    from gan_writer.cowrite.generator import ModelGenerator
    from gan_writer.cowrite.session import Session
    from gan_writer.systems.options import check_option
    from gan_writer.writing.script import check_logline, parse_characters

    if args.temperature is not None:  # before the checkpoint loads, not at the first draw
        check_option("--temperature", args.temperature, "> 0")
    if args.session:
        check_session_path(args.session)
    kind = args.kind or ("script" if args.characters is not None or args.logline is not None else "poem")
    characters = parse_characters(args.characters) if args.characters is not None else []
    if args.logline is not None:
        if not args.logline.strip():
            raise ValueError("--logline is empty; give the plot in one sentence, or drop --logline")
        check_logline(args.logline)
    if (characters or args.logline) and kind != "script":
        raise ValueError(f"--logline and --characters are for script sessions, not --kind {kind}; "
                         "use --kind script or drop them")
    if args.form is not None and kind != "poem":
        raise ValueError(f"--form is for poem sessions, not --kind {kind}; drop --form")
    art = load_artifacts(args.ckpt)
    if art.tokenizer is None:
        raise ValueError(f"{args.ckpt} has no tokenizer (an oracle checkpoint?); co-writing needs a text model")
    form = args.form
    if kind == "poem" and not (args.session and Path(args.session).exists()):
        form = form_for(art, form)
    kwargs = dict(kind=kind, form=form, seed=args.seed or 0, title=args.title or "",
                  temperature=1.0 if args.temperature is None else args.temperature,
                  logline=args.logline or "", characters=characters)
    gen = ModelGenerator(art, strict_rhyme=args.strict_rhyme)
    if not args.session:
        session = Session(gen, **kwargs)
    else:
        existed = Path(args.session).exists()
        session = Session.open_or_create(args.session, gen, **kwargs)
        if existed:
            check_new_session_options(args, session)
    warn_unknown_names(session, gen)
    return session


def warn_unknown_names(session, gen) -> None:
    """Note on stderr the cast names the model's vocabulary cannot write: the prompt's cue
    loses them, so which of them speaks next is left to the turn rule's order alone."""
    unknown = gen.unknown_words([n for n, _ in session.characters])
    if unknown:
        print(f"gan_writer: warning: the model's vocabulary has no {', '.join(map(repr, unknown))}: the prompt cannot "
              "name them, so the turn rule's order alone chooses among them; names the model knows work better",
              file=sys.stderr)


def form_for(art, form: str | None) -> str:
    """The poem form of a new session: ``form`` when the checkpoint's tokenizer can write it,
    else by default ``wujue`` for a Chinese checkpoint and ``quatrain`` for any other (noted on stderr).

    Raises:
        ValueError: ``--form`` the tokenizer cannot write (no ``，``/``。``, no line break), or unknown.
    """
    from gan_writer.writing.constraints import FormProcessor
    from gan_writer.writing.forms import get_form

    def check(name: str) -> None:
        FormProcessor(get_form(name, None)[0], art.tokenizer, art.generator.eos_token_id)

    if form is not None:
        try:
            check(form)
        except ValueError as err:
            raise ValueError(f"--form {form}: {err}; choose a form in the checkpoint's language") from None
        return form
    try:
        check("wujue")
        return "wujue"
    except ValueError:
        print("gan-writer cowrite: note: the checkpoint cannot write Chinese verse: a quatrain session "
              "(--form chooses another)", file=sys.stderr)
        return "quatrain"


def check_new_session_options(args: argparse.Namespace, session) -> None:
    """Refuse ``--kind/--form/--seed/--temperature/--title/--logline/--characters`` given with
    an existing ``--session`` whose saved value differs: they apply to new sessions only, and
    must not be silently ignored.

    Raises:
        ValueError: naming the session file, the option and both values.
    """
    from gan_writer.writing.script import parse_characters

    def cast(pairs) -> str:
        return "; ".join(f"{n}: {d}" if d else f"{n}:" for n, d in pairs)

    saved = {"kind": session.kind, "form": session.form, "seed": session.seed, "title": session.title,
             "temperature": session.states[0]["temperature"],  # as created (":temperature" changes later states)
             "logline": session.logline, "characters": cast(session.characters)}
    for key, value in saved.items():
        given = getattr(args, key)
        if given is not None and key == "characters":
            given = cast(parse_characters(given))
        elif given is not None and key == "logline":
            given = given.strip()
        if given is not None and given != value:
            raise ValueError(f"--session {args.session} exists and was written with {key} {value!r}; --{key} {given!r} "
                             f"sets a new session only: drop --{key} to continue it (the file was left as it is), "
                             "or give a new --session file")


def run(args: argparse.Namespace) -> int:
    from gan_writer.cowrite.terminal import loop

    try:
        session = open_session(args)
    except (FileNotFoundError, ValueError, ModuleNotFoundError) as err:
        from gan_writer.commands.errors import report

        return report("gan-writer cowrite", err)
    return loop(session, sys.stdin, sys.stdout, prompt=sys.stdin.isatty())
