"""Run the Lambda functions from their `sam build` artifact on this machine, without Docker.

`invoke` starts a function's handler through the Lambda runtime interface client (awslambdaric, in
`.venv-lambda`) against a local Runtime API (`runtime_api`), with the layer's compiled distributions
rebuilt for this machine (`overlay`) and everything else taken from the artifact as built.
`python -m jobwatch_tools.lambda_local FUNCTION EVENT` and `make invoke FN=... EVENT=...` run it.
"""
