"""What every tinyconv command line shares: the error policy, the exit statuses, checked number types, and help
that shows the defaults.

- Bad input is one `error: ...` line on stderr and exit status ERROR (never a traceback from deep inside NumPy);
  `TINYCONV_DEBUG=1` prints the traceback behind that line, so a ValueError from a bug is not hidden.
- Exit statuses: YES (0) for success or a "yes" answer, NO (3) for a "no" answer (verify: not that person),
  ERROR (1) for a failure, USAGE (2) for a bad command line (argparse's own), 130 after Ctrl-C.
- Numbers given on a command line go through the type functions below, so NaN, inf and out-of-range values are
  usage errors naming the option.
"""
import argparse
import math
import os
import sys
import traceback

YES, ERROR, USAGE, NO = 0, 1, 2, 3


def run_command(action, *args):
    """Return `action(*args)`'s exit status (None counts as YES), turning user errors into one line each."""
    try:
        return action(*args) or YES
    except (ValueError, OSError) as e:
        if os.environ.get("TINYCONV_DEBUG") == "1":
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks and appends "(default: X)" to every option that has a default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.option_strings and "%(default)" not in text and "default" not in text
                and action.default is not None and action.default is not False
                and action.default is not argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


def _number(kind, text, check, requirement):
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or (kind is float and not math.isfinite(value)) or not check(value):
        raise argparse.ArgumentTypeError(f"expected {requirement}, got {text!r}")
    return value


def positive_int(text):
    """argparse type: an integer >= 1."""
    return _number(int, text, lambda v: v >= 1, "a positive integer")


def nonnegative_int(text):
    """argparse type: an integer >= 0."""
    return _number(int, text, lambda v: v >= 0, "an integer >= 0")


def positive_float(text):
    """argparse type: a finite number > 0 (no NaN, no inf)."""
    return _number(float, text, lambda v: v > 0, "a finite number > 0")


def nonnegative_float(text):
    """argparse type: a finite number >= 0 (no NaN, no inf)."""
    return _number(float, text, lambda v: v >= 0, "a finite number >= 0")


def finite_float(text):
    """argparse type: any finite number (no NaN, no inf)."""
    return _number(float, text, lambda v: True, "a finite number")
