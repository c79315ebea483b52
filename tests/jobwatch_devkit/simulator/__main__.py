"""`python -m jobwatch_devkit.simulator --port P [--latency-ms MS]`: the simulator as a process."""

from __future__ import annotations

from .server import main

if __name__ == "__main__":
    raise SystemExit(main())
