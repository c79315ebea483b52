"""`python -m jobwatch_tools.lambda_local FUNCTION EVENT`: see `jobwatch_tools.lambda_local.invoke`."""

from jobwatch_tools.lambda_local.invoke import main

raise SystemExit(main())
