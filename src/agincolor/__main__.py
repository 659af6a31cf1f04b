"""``python -m agincolor``: the same as the ``agincolor`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
