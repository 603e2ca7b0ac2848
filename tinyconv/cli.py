"""What every tinyconv command line does with failures: bad input is one `error: ...` line on stderr and exit
status 1 (never a traceback from deep inside NumPy); Ctrl-C is exit status 130."""
import sys


def run_command(action, *args):
    """Return `action(*args)`'s exit status (None counts as 0), turning user errors into one line each."""
    try:
        return action(*args) or 0
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
