"""`python -m jobwatch_devkit.demo` (`make demo`)."""

from __future__ import annotations

import sys

from .run import main

if __name__ == "__main__":
    sys.exit(main())
