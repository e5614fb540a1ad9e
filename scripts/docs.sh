#!/usr/bin/env bash
# Set up everything on a fresh machine, then build the documentation site into
# docs/_build/html with warnings as errors. Extra arguments go to sphinx-build
# (e.g. -E to rebuild every page).
source "$(dirname "$0")/_env.sh"
setup_venv
# The docs extra (Sphinx, furo, MyST, matplotlib) on top of the test set-up,
# reinstalled only when the project's metadata changed.
stamp=.venv/.docs-installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q -e ".[docs]"
    rm -f .venv/.docs-installed-*
    touch "$stamp"
fi
.venv/bin/python -m sphinx -W --keep-going -b html -d docs/_build/doctrees docs docs/_build/html "$@"
echo "The site is in docs/_build/html (open docs/_build/html/index.html)"
