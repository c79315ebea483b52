"""`python -m jobwatch.api --openapi` prints the OpenAPI document (committed as docs/openapi.json)."""

from jobwatch.api.routes import main

raise SystemExit(main())
