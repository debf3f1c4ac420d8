#!/usr/bin/env bash
# One entry point for a fresh clone: sets up what is missing, then runs the job.
#   scripts/dev.sh demo   run the daemon on the built-in demo source (readings on the console)
#   scripts/dev.sh test   lint, type-check and run the whole test suite
#   scripts/dev.sh setup  only install (venv, Python packages, Debian packages for the tests)
# Re-running is fast: packages are reinstalled only when pyproject.toml changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DIGIT_EDGE_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
cd "$ROOT"

say() { printf '[dev] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        say "need root to run: $*"; exit 1; fi
}

APT_UPDATED=0
apt_install() {  # apt_install CMD PACKAGE...: install PACKAGEs when CMD is missing
    local cmd="$1"; shift
    command -v "$cmd" >/dev/null 2>&1 && return 0
    if ! command -v apt-get >/dev/null; then say "please install: $* (no apt-get here)"; exit 1; fi
    if [ "$APT_UPDATED" -eq 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
    say "installing Debian packages: $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_venv() {  # ensure_venv EXTRAS
    local extras="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating virtual environment $VENV"
        if ! "$PY" -m venv "$VENV" 2>/dev/null; then
            apt_install false python3-venv
            rm -rf "$VENV"; "$PY" -m venv "$VENV"
        fi
        "$VENV/bin/python" -m pip install -q --upgrade pip
    fi
    local stamp="$VENV/.digit-edge-$extras.stamp"
    local want
    want="$(cat pyproject.toml scripts/dev.sh | sha256sum | cut -c1-16)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        say "installing digit-edge[$extras] into $VENV (first run takes a few minutes)"
        local target="."; [ "$extras" = base ] || target=".[$extras]"
        local log="$VENV/pip-install.log"
        if ! "$VENV/bin/python" -m pip install -q -e "$target" >"$log" 2>&1; then
            cat "$log" >&2; say "pip install failed (log: $log)"; exit 1
        fi
        echo "$want" > "$stamp"
    fi
}

ensure_test_tools() {
    apt_install mosquitto mosquitto mosquitto-clients
    apt_install openssl openssl
    apt_install strace strace
    apt_install systemd-analyze systemd
    apt_install chromium chromium
}

case "${1:-}" in
    demo)
        shift
        ensure_venv "$( [ -n "${DIGIT_EDGE_EXTRAS:-}" ] && echo "$DIGIT_EDGE_EXTRAS" || echo base )"
        exec "$VENV/bin/digit-edge" run --config examples/demo.yaml "$@"
        ;;
    test)
        shift
        ensure_test_tools
        ensure_venv dev,train
        say "ruff"; "$VENV/bin/ruff" check .
        # mypy checks for the venv's own Python: pyproject's python_version (3.11) with 3.13's
        # packages misreads stubs written for >= 3.12 (numpy 2.5's ndarray.max()).
        local_py="$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
        say "Python $local_py ($VENV)"
        say "mypy --strict (edge/, converter/) for Python $local_py"
        "$VENV/bin/mypy" --python-version "$local_py"
        say "pytest"
        exec "$VENV/bin/pytest" "$@"
        ;;
    setup)
        ensure_test_tools
        ensure_venv dev,train
        ;;
    *)
        sed -n '2,6p' "$0" >&2
        exit 2
        ;;
esac
