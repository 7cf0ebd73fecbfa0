"""argparse for the tools (``gan-writer generate``, ``write``, ``export``, ...): options never
abbreviated, a negative value such as ``-1,1`` read as a value, and a one-line error with the
closest option."""
from __future__ import annotations

import argparse
import re
import sys

NEGATIVE_VALUE = re.compile(r"-(\d|\.\d|inf|nan)", re.IGNORECASE)
#: The seeds torch's generators take (``torch.manual_seed``: a signed or unsigned 64-bit integer).
SEED_RANGE = (-(2**63), 2**64 - 1)


def seed(text: str) -> int:
    """argparse ``type`` of ``--seed``: an integer in :data:`SEED_RANGE`.

    Raises:
        argparse.ArgumentTypeError: otherwise, naming the range (argparse adds the option).
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not SEED_RANGE[0] <= value <= SEED_RANGE[1]:
        raise argparse.ArgumentTypeError(f"{value} is outside the seeds torch takes, {SEED_RANGE[0]} to {SEED_RANGE[1]}")
    return value


class ToolParser(argparse.ArgumentParser):
    """argparse for the tools: options are never abbreviated (``--temp`` is not
    ``--temperature``), and a one-line error suggests the closest option, also when a misspelled
    option left a required one missing."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)  # also for the subcommands' parsers (write poem, ...)
        super().__init__(*args, **kwargs)
        self._given: list[str] = []

    def parse_known_args(self, args=None, namespace=None):  # noqa: D102 - remembers what was typed
        self._given = self._negative_values_joined(list(sys.argv[1:] if args is None else args))
        return super().parse_known_args(self._given, namespace)

    def _negative_values_joined(self, args: list[str]) -> list[str]:
        """``--temperatures -1,1`` as ``--temperatures=-1,1``: argparse takes only plain negative
        numbers (``-1``, ``-.5``) for values and reads ``-1,1`` or ``-1e-3`` as an unknown option,
        so the option's own check (all > 0) never got to say what is wrong."""
        out: list[str] = []
        for token in args:
            action = self._option_string_actions.get(out[-1]) if out else None
            if (action is not None and action.nargs is None and NEGATIVE_VALUE.match(token)
                    and token not in self._option_string_actions):
                out[-1] = f"{out[-1]}={token}"
            else:
                out.append(token)
        return out

    def error(self, message: str):  # noqa: D102 - argparse's hook
        prog, options = self._chosen_parser()
        unrecognized = message.startswith("unrecognized arguments")
        if unrecognized:
            typed = [t.split("=", 1)[0] for t in message.split() if t.startswith("--")]
        else:  # e.g. "the following arguments are required: --out" after a misspelled --outt
            typed = [t.split("=", 1)[0] for t in self._given if t.startswith("--") and t.split("=", 1)[0] not in options]
        match = closest_option(typed[0], options) if typed else None
        hint = "" if match is None else f"; did you mean {match}?" if unrecognized else f"; did you mean {match} (not {typed[0]})?"
        self.exit(2, f"{prog}: error: {message}{hint} (see {prog} --help)\n")

    def _chosen_parser(self) -> tuple[str, list[str]]:
        """The prog and option strings of the subcommand typed (``write poem``), else this parser's."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = next((t for t in self._given if t in action.choices), None)
                if chosen is not None:
                    sub = action.choices[chosen]
                    return sub.prog, list(sub._option_string_actions)
        return self.prog, list(self._option_string_actions)


def closest_option(typed: str, options: list[str]) -> str | None:
    """The option ``typed`` most likely meant: one it begins (``--temp``: ``--temperature``), else
    the closest spelling (difflib); None when nothing is close."""
    import difflib

    longer = [o for o in options if o.startswith(typed) and o != typed and o.startswith("--")]
    if len(longer) == 1:
        return longer[0]
    match = difflib.get_close_matches(typed, longer or options, n=1, cutoff=0.0 if longer else 0.6)
    return match[0] if match else None
