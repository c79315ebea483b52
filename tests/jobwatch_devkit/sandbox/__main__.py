"""`python -m jobwatch_devkit.sandbox`: see the package docstring and `--help`."""

from __future__ import annotations

from .run import main

if __name__ == "__main__":
    raise SystemExit(main())
