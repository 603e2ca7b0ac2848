"""python -m tinyconv.stylize: the style-transfer command line under its first name (tinyconv/style/__main__.py)."""
import sys

from tinyconv.style.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
