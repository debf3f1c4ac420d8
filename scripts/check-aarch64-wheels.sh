#!/usr/bin/env bash
# Checks that every runtime dependency has a binary wheel for a 64-bit Raspberry Pi (Linux
# aarch64) on each Raspberry Pi OS's CPython: 3.11 on Bookworm (glibc 2.36) and 3.13 on Trixie
# (glibc 2.41). Downloads them into a temporary folder, installs nothing.
#   PI_PYTHON=3.13 scripts/check-aarch64-wheels.sh   checks one of them only
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
deps=$("$PY" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml","rb"))["project"]["dependencies"]))')
mapfile -t reqs <<<"$deps"
declare -A GLIBC=([3.11]=36 [3.13]=41)  # the glibc 2.N each release ships
targets=("${PI_PYTHON:-3.11}")
[ -n "${PI_PYTHON:-}" ] || targets=(3.11 3.13)
for version in "${targets[@]}"; do
    glibc="${GLIBC[$version]:-}"
    if [ -z "$glibc" ]; then echo "PI_PYTHON=$version: not a Raspberry Pi OS Python (3.11 or 3.13)" >&2; exit 2; fi
    platforms=(--platform manylinux2014_aarch64)
    for ((minor = 17; minor <= glibc; minor++)); do platforms+=(--platform "manylinux_2_${minor}_aarch64"); done
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
    if ! "$PY" -m pip download -q --only-binary=:all: "${platforms[@]}" --python-version "$version" \
            --implementation cp -d "$out" "${reqs[@]}"; then
        echo "CPython $version aarch64 (glibc 2.$glibc): a runtime dependency has no wheel (pip's error above)" >&2
        exit 1
    fi
    ls "$out"
    echo "all runtime dependencies have aarch64 wheels for CPython $version (glibc 2.$glibc)"
    rm -rf "$out"
done
