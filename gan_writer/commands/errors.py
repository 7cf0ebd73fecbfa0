"""How the ``gan-writer`` command reports an error the user can fix: one line, no traceback.

A user error is a mistyped or invalid option (jsonargparse's ``ArgumentError``), or an
error that gan_writer itself raised (bad corpus, bad checkpoint, a pretrained model that is
not here), however deeply LightningCLI wrapped it. Anything else is a bug and keeps its
traceback. ``--verbose`` or ``GAN_WRITER_DEBUG=1`` shows the traceback of every error.
"""
from __future__ import annotations

import errno
import os
import re
import sys

__all__ = ["debug_enabled", "report", "user_cause", "describe_error", "describe_parse_error", "check_writable",
           "USER_ERRORS"]

#: exception types that, raised by gan_writer's own code, mean "bad input"
USER_ERRORS = (ValueError, OSError, TypeError, KeyError, LookupError)
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # .../gan_writer/
#: errors of the file system a user can fix (a read-only or full disk, a missing permission),
#: user errors wherever they are raised
_FILE_SYSTEM_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                       errno.EISDIR, errno.ENAMETOOLONG}


def debug_enabled() -> bool:
    """True when ``GAN_WRITER_DEBUG`` is set to anything but ``""`` / ``0`` (``--verbose`` sets it)."""
    return os.environ.get("GAN_WRITER_DEBUG", "") not in ("", "0")


def report(prog: str, err: BaseException) -> int:
    """Print ``prog: error: message`` on stderr and return 2; re-raise under :func:`debug_enabled`."""
    if debug_enabled():
        raise err
    print(f"{prog}: error: {one_line(describe_error(err))}", file=sys.stderr)
    return 2


def describe_error(err: BaseException) -> str:
    """``str(err)``; a file-system error as ``PATH: reason: what to do`` instead of ``[Errno N] ...``."""
    if isinstance(err, OSError) and err.filename and err.strerror and str(err).startswith("[Errno"):
        writable = err.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT)
        hint = "choose another path, or make it writable (permissions, free space)" if writable else "check the path"
        return f"{err.filename}: {err.strerror.lower()}: {hint}"
    return str(err)


def check_writable(folder: str | os.PathLike, what: str) -> None:
    """Refuse, before any work, a ``folder`` that a file cannot be created in.

    A real probe (a hidden temporary file, created and removed), so a read-only file system, a
    full disk or a missing permission are found up front, not after minutes of sampling.

    Raises:
        PermissionError: naming ``what`` (e.g. ``"--json out/m.json"``), the folder and the reason.
    """
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".gan-writer-probe-"):
            pass
    except OSError as err:
        reason = (err.strerror or str(err)).lower()
        raise PermissionError(f"{what}: cannot write in {folder} ({reason}); choose another path, or make it "
                              "writable (permissions, free space)") from None


def one_line(message: str) -> str:
    """``message`` with its line breaks folded (a user error is one line on the terminal)."""
    return " ".join(part.strip() for part in message.strip().splitlines() if part.strip())


def user_cause(err: BaseException) -> BaseException | None:
    """The gan_writer error (bad corpus, checkpoint, option) at the root of ``err``, if any.

    LightningCLI wraps errors raised while building the model or data module in its own
    "Does not validate against any of the Union subtypes" message; the user needs only ours:
    the first exception along the ``__cause__`` / ``__context__`` chain whose innermost frame
    is gan_writer code (not a test, not the CLI's own frames) and whose type is a
    :data:`USER_ERRORS`; or Lightning's ``MisconfigurationException`` (``--trainer.max_steps=-5``),
    or a file-system error naming its path.
    """
    from gan_writer.data.readers import CorpusError

    kinds = (*USER_ERRORS, CorpusError)
    seen = 0
    while err is not None and seen < 20:
        if isinstance(err, OSError) and err.errno in _FILE_SYSTEM_ERRNOS and err.filename:
            return err
        if type(err).__name__ == "MisconfigurationException":  # Lightning's word for a bad trainer value
            return err
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


def _type_name(text: str) -> str:
    """``<class 'float'>`` -> ``a float``; ``<class 'int'>`` -> ``an int``;
    ``typing.Literal['a', 'b']`` -> ``one of 'a', 'b'``; anything else as given."""
    text = text.strip()
    if m := re.match(r"^(?:typing\.)?Literal\[(.*)\]$", text):
        return f"one of {m.group(1)}"
    name = re.sub(r"^<class '(?:builtins\.)?([^']+)'>$", r"\1", text)
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _leaf_error(message: str) -> tuple[str, str, str, str, str | None] | None:
    """The innermost error of a (nested) jsonargparse message: ``(kind, key, detail, value, cls)``
    with ``kind`` ``"unknown"`` (``key`` is the unknown dotted key) or ``"type"`` (``key`` the
    option, ``detail`` the expected type, ``value`` the value given), and ``cls`` the class path
    of the innermost ``Problem with given class_path`` block around it (None outside one);
    None when neither.

    jsonargparse reports a bad value inside a class block (``model``, ``data``, a generator
    dataclass) as ``Parser key "model": ... Problem with given class_path ...: Parser key
    "lr": Expected a <class 'float'>. Got value: abc``: the key is the path of ``Parser key``
    lines above the innermost error (``init_args`` after ``model`` / ``data``)."""
    lines = message.splitlines()
    stack: list[tuple[int, str]] = []  # (indent, key) of the enclosing "Parser key" lines

    def path(*tail: str) -> str:
        keys = [k for _, k in stack if not k.startswith("@")] + [t for t in tail if t]
        dotted = ".".join(keys).split(".")
        if len(dotted) > 1 and dotted[0] in ("model", "data") and dotted[1] != "init_args":
            dotted.insert(1, "init_args")
        return ".".join(dotted)

    def cls() -> str | None:
        return next((k[1:] for _, k in reversed(stack) if k.startswith("@")), None)

    for n, line in enumerate(lines):
        indent = len(line) - len(line.lstrip(" -"))
        text = line.strip().removeprefix("- ").strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if m := re.match(r"^Problem with given class_path '([^']+)':\s*$", text):
            stack.append((indent, "@" + m.group(1)))
            continue
        if m := re.match(r'^Parser key "([^"]+)":\s*(.*)$', text):
            stack.append((indent, m.group(1)))
            text = m.group(2).strip()
            if not text:
                continue
        if m := (re.match(r"^Option '([^']+)' is not accepted", text) or re.match(r'^Key "([^"]+)" is not expected', text)):
            return "unknown", path(m.group(1)), "", "", cls()
        if m := re.match(r"^(Group|Subcommand) '([^']+)' does not accept option '([^']+)'", text):
            return "unknown", path(m.group(2) if m.group(1) == "Group" else "", m.group(3)), "", "", cls()
        if m := re.search(r"[Uu]nrecognized arguments:\s*(\S+)", text):
            return "unknown", path(m.group(1).lstrip("-").split("=", 1)[0]), "", "", cls()
        if m := re.match(r"^Expected a (.+?)\. Got value: (.*)$", text):
            return "type", path(), _type_name(m.group(1)), m.group(2), cls()
        if re.match(r"^Expected a (.+)$", text) and stack:  # a Union: every subtype it tried, in turn
            kinds = []
            for other in lines[n:]:
                depth = len(other) - len(other.lstrip(" -"))
                if depth < indent:
                    break
                if depth == indent and (k := re.match(r"^-?\s*Expected a (.+)$", other.strip())):
                    kinds.append(k.group(1))
            kinds = [k for k in kinds if "NoneType" not in k]
            if not kinds:
                continue
            given = next((re.sub(r"^Given value:\s*", "", x.strip()) for x in lines[n + 1:]
                          if x.strip().startswith("Given value:")), "")
            return "type", path(), " or ".join(_type_name(k) for k in kinds), given, cls()
    return None


def _config_files(argv: list[str]) -> list[str]:
    files = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--config", "-c")]
    return files + [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]


def _in_file(key: str, argv: list[str]) -> str | None:
    """The last ``--config`` file of ``argv`` that sets the dotted ``key`` (``model.init_args.x``
    or ``model.x``), else None."""
    import yaml

    found = None
    for path in _config_files(argv):
        try:
            with open(path, encoding="utf-8") as fh:
                node = yaml.safe_load(fh)
        except (OSError, ValueError, yaml.YAMLError):
            continue
        for keys in (key.split("."), key.replace(".init_args.", ".", 1).split(".")):
            cur = node
            for k in keys:
                cur = cur.get(k, _MISSING) if isinstance(cur, dict) else _MISSING
            if cur is not _MISSING:
                found = path
                break
    return found


_MISSING = object()


def _on_command_line(key: str, argv: list[str], value: str | None = None) -> str | None:
    """The ``--key`` spelling of ``argv`` that sets the dotted ``key`` (long or short form);
    with ``value``, only where the command line gave that value (a bad value in a file is
    not blamed on an option that set another)."""
    short = key.replace(".init_args.", ".", 1)
    for i in range(len(argv) - 1, -1, -1):
        name, eq, given = argv[i].partition("=")
        if name.startswith("--") and name[2:].replace(".init_args.", ".", 1) == short:
            if not eq:
                given = argv[i + 1] if i + 1 < len(argv) else ""
            return name if value is None or given == value else None
    return None


#: the sections of a ``fit`` / ``validate`` / ``test`` config (LightningCLI)
SECTIONS = ("trainer", "model", "data", "seed_everything", "ckpt_path", "optimizer", "lr_scheduler", "config")


def _file_naming(cls: str, leaf: str, argv: list[str]) -> str | None:
    """The last ``--config`` file whose text names class ``cls`` and the key ``leaf``, else None."""
    found = None
    for path in _config_files(argv):
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, ValueError):
            continue
        if cls in text and re.search(rf"(^|[\s{{,]){re.escape(leaf)}\s*:", text, re.M):
            found = path
    return found


def _class_parameters(cls: str) -> list[str]:
    """The ``__init__`` parameter names of the class at import path ``cls`` (already imported by
    jsonargparse), else []."""
    import importlib
    import inspect

    module, _, name = cls.rpartition(".")
    try:
        return list(inspect.signature(getattr(importlib.import_module(module), name)).parameters)
    except (ImportError, AttributeError, TypeError, ValueError):
        return []


def _describe_in_class(kind: str, key: str, expected: str, value: str, cls: str, argv: list[str]) -> str:
    """One line for an error inside a class block outside ``model`` / ``data`` (a logger, a
    callback): the key, its class and block, the file that sets it, a closest parameter."""
    import difflib

    block, _, leaf = key.rpartition(".")
    source = _file_naming(cls, leaf, argv)
    where = f"{leaf} of {cls} ({block}){f' in {source}' if source else ''}"
    if kind == "type":
        return f"{where}: expected {expected}, got {value!r}"
    match = difflib.get_close_matches(leaf, [p for p in _class_parameters(cls) if p not in ("self", "kwargs")], n=1)
    return f"unknown key {where}{f'; did you mean {match[0]}?' if match else ''}"


def describe_parse_error(message: str, argv: list[str]) -> str:
    """One line for a jsonargparse error: the option (or the key of a ``--config`` file) at
    fault; for an unknown key the closest valid key
    (:func:`gan_writer.commands.options.closest_key`), for a bad value the type expected."""
    from gan_writer.commands.options import closest_key, config_classes, valid_keys

    leaf = _leaf_error(message)
    if leaf is not None:
        kind, key, expected, value, cls = leaf
        section = key.split(".", 1)[0]
        if cls and section not in ("model", "data") and "." in key:
            return _describe_in_class(kind, key, expected, value, cls, argv)
        option = _on_command_line(key, argv, value if kind == "type" else None)
        source = None if option else _in_file(key, argv)
        if kind == "unknown" and section not in SECTIONS:
            import difflib

            near = difflib.get_close_matches(section, SECTIONS, n=1)
            where = f" in {source}" if source else (f" ({option})" if option else "")
            return (f"unknown section {section}{where}; {f'did you mean {near[0]}? ' if near else ''}"
                    f"a config has the sections {', '.join(SECTIONS[:7])}")
        if kind == "type":
            shown = repr(value) if not value.startswith(("NestedArg(", "{", "[")) else value
            where = option or (f"{key} in {source}" if source else f"--{key}")
            return f"{where}: expected {expected}, got {shown}"
        classes = config_classes(argv)
        match = closest_key(option or key, valid_keys(classes.get("model"), classes.get("data")))
        if source:
            hint = f"; did you mean {match}?" if match else ""
            return f"unknown key {key} in {source}{hint}{_where_listed(key)}"
        given = option or f"--{key}"
        hint = f"; did you mean --{match}?" if match else ""
        return f"unknown option {given}{hint}{_where_listed(given)}"
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    useful = [re.sub(r"^- ", "", line) for line in lines if not re.match(
        r"^(Does not validate against any of the Union subtypes|Subtypes:|Errors:|- Expected a <class 'NoneType'>|"
        r"Given value type:)", line)]
    return " ".join(useful[:4]) if useful else one_line(message)
