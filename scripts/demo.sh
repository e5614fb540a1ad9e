#!/usr/bin/env bash
# Set up everything on a fresh machine, then run the loopback demo. Its
# environment (.venv-demo) holds the package and its dependencies only.
source "$(dirname "$0")/_env.sh"
setup_venv .venv-demo ""
.venv-demo/bin/python examples/demo.py "$@"
