# Shared set-up for scripts/demo.sh, scripts/test.sh and scripts/docs.sh
# (sourced, not run). Finds Python >= 3.13 and creates a virtual environment
# holding the package with what the script needs: the demo's holds the
# package alone (.venv-demo), the tests' its test and docs extras too (.venv);
# for tests, a separate venv holds the reference spead2 as a peer.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.13 python3.14 python3; do
        [ -n "$candidate" ] || continue
        if PYENV_VERSION="${PYENV_VERSION:-3.13.0}" "$candidate" -c \
            'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "error: Python >= 3.13 not found (set PYTHON=/path/to/python3.13)" >&2
    return 1
}

# setup_venv [DIR [EXTRAS]]: DIR (default .venv) with the package installed
# editable, plus EXTRAS (default "test,docs"; "" for the package alone).
setup_venv() {
    local dir="${1:-.venv}"
    local extras="${2-test,docs}"
    local py
    py="$(find_python)"
    if [ ! -x "$dir/bin/python" ]; then
        PYENV_VERSION="${PYENV_VERSION:-3.13.0}" "$py" -m venv "$dir"
    fi
    # Reinstall only when the project's metadata changed since the last install.
    local stamp="$dir/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
    if [ ! -f "$stamp" ]; then
        "$dir/bin/python" -m pip install -q --upgrade pip
        "$dir/bin/python" -m pip install -q -e ".${extras:+[$extras]}"
        rm -f "$dir"/.installed-*
        touch "$stamp"
    fi
}

# System tools some tests use: tcpdump (captures real loopback traffic for the
# pcap interop tests) and Chromium with chromedriver (the web example's page in
# a real browser). Installed when missing and we may (root with apt); otherwise
# those tests skip, saying why.
setup_system_tools() {
    local missing=()
    command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
            >/dev/null 2>&1 \
            || echo "warning: could not install ${missing[*]}; tests needing them will be skipped" >&2
    else
        echo "note: ${missing[*]} not found; tests needing them will be skipped" >&2
    fi
}

# The reference spead2 (C++ core) as a test peer, in its own venv outside the
# repo: it is never imported into .venv (the import names clash). numba and
# scipy let the benchmark's chunk-stream workload run its numba place callback
# on the reference too; a venv built before they were wanted gets them added.
setup_reference() {
    local version=4.5.1
    local dir="${SPEAD2_REFERENCE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/aiospead2/reference-$version}"
    if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c "import spead2" 2>/dev/null; then
        local py
        py="$(find_python)"
        rm -rf "$dir"
        mkdir -p "$(dirname "$dir")"
        if ! { PYENV_VERSION="${PYENV_VERSION:-3.13.0}" "$py" -m venv "$dir" \
               && "$dir/bin/python" -m pip install -q "spead2==$version" numpy; }; then
            echo "warning: could not install the reference spead2 $version; interop tests will be skipped" >&2
            rm -rf "$dir"
            return 0
        fi
    fi
    if ! "$dir/bin/python" -c "import numba, scipy" 2>/dev/null \
        && ! "$dir/bin/python" -m pip install -q numba scipy; then
        echo "warning: could not add numba and scipy to the reference venv; its chunk-stream benchmark gives no figure" >&2
    fi
    export SPEAD2_REFERENCE_PYTHON="$dir/bin/python"
}
