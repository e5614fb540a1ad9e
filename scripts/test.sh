#!/usr/bin/env bash
# Set up everything on a fresh machine, then lint, type-check and run the tests.
source "$(dirname "$0")/_env.sh"
setup_venv
setup_reference
setup_system_tools
.venv/bin/ruff check
.venv/bin/mypy
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
