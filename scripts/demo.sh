#!/usr/bin/env bash
# Set up everything on a fresh machine, then run the loopback demo.
source "$(dirname "$0")/_env.sh"
setup_venv
.venv/bin/python examples/demo.py "$@"
