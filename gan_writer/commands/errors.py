"""How the ``gan-writer`` command reports an error the user can fix: one line, no traceback.

A user error is a mistyped or invalid option (jsonargparse's ``ArgumentError``), or an
error that gan_writer itself raised (bad corpus, bad checkpoint, a pretrained model that is
not here), however deeply LightningCLI wrapped it. Anything else is a bug and keeps its
traceback. ``--verbose`` or ``GAN_WRITER_DEBUG=1`` shows the traceback of every error.
"""
from __future__ import annotations

import os
import re
import sys

__all__ = ["debug_enabled", "report", "user_cause", "describe_parse_error", "USER_ERRORS"]

#: exception types that, raised by gan_writer's own code, mean "bad input"
USER_ERRORS = (ValueError, OSError, TypeError, KeyError, LookupError)
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # .../gan_writer/


def debug_enabled() -> bool:
    """True when ``GAN_WRITER_DEBUG`` is set to anything but ``""`` / ``0`` (``--verbose`` sets it)."""
    return os.environ.get("GAN_WRITER_DEBUG", "") not in ("", "0")


def report(prog: str, err: BaseException) -> int:
    """Print ``prog: error: message`` on stderr and return 2; re-raise under :func:`debug_enabled`."""
    if debug_enabled():
        raise err
    print(f"{prog}: error: {one_line(str(err))}", file=sys.stderr)
    return 2


def one_line(message: str) -> str:
    """``message`` with its line breaks folded (a user error is one line on the terminal)."""
    return " ".join(part.strip() for part in message.strip().splitlines() if part.strip())


def user_cause(err: BaseException) -> BaseException | None:
    """The gan_writer error (bad corpus, checkpoint, option) at the root of ``err``, if any.

    LightningCLI wraps errors raised while building the model or data module in its own
    "Does not validate against any of the Union subtypes" message; the user needs only ours:
    the first exception along the ``__cause__`` / ``__context__`` chain whose innermost frame
    is gan_writer code (not a test, not the CLI's own frames) and whose type is a
    :data:`USER_ERRORS`.
    """
    from gan_writer.data.readers import CorpusError

    kinds = (*USER_ERRORS, CorpusError)
    seen = 0
    while err is not None and seen < 20:
        tb = err.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None and isinstance(err, kinds):
            path = os.path.abspath(tb.tb_frame.f_code.co_filename)
            if path.startswith(_PACKAGE) and path != os.path.abspath(__file__):
                return err
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


def _where_listed(option: str) -> str:
    """The command that lists the options of ``option``'s block (``--trainer.*``: ``fit --help``)."""
    name = option.lstrip("-")
    if name.startswith("trainer."):
        return " (`gan-writer fit --help` lists the Trainer's options)"
    block = next((b for b in ("generator", "discriminator") if f".{b}." in f".{name}."), None)
    block = block or ("data" if name.startswith("data.") else "model")
    return f" (`gan-writer fit --print-options {block}` lists the options)"


def describe_parse_error(message: str, argv: list[str]) -> str:
    """One line for a jsonargparse error: the option at fault, and for an unknown key the
    closest valid key (:func:`gan_writer.commands.options.closest_key`)."""
    from gan_writer.commands.options import closest_key, config_classes, valid_keys

    unknown = re.findall(r"[Uu]nrecognized arguments:\s*(.+)", message)
    unknown += [f"--{k}" for k in re.findall(r"NestedArg\(key='([^']+)'", message)]
    unknown += [f"--{k}" for k in re.findall(r'Key "([^"]+)" is not expected', message)]
    tokens = [t for group in unknown for t in group.split() if t.startswith("--")]
    if tokens:
        nested = tokens[0].lstrip("-").split("=", 1)[0]
        given = next((a.split("=", 1)[0] for a in argv if a.startswith("--")
                      and a.split("=", 1)[0].lstrip("-").endswith(nested)), f"--{nested}")
        classes = config_classes(argv)
        match = closest_key(given, valid_keys(classes.get("model"), classes.get("data")))
        hint = f"; did you mean --{match}?" if match else ""
        return f"unknown option {given}{hint}{_where_listed(given)}"
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    useful = [re.sub(r"^- ", "", line) for line in lines if not re.match(
        r"^(Does not validate against any of the Union subtypes|Subtypes:|Errors:|- Expected a <class 'NoneType'>|"
        r"Given value type:)", line)]
    return " ".join(useful[:4]) if useful else one_line(message)
