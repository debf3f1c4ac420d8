#!/usr/bin/env bash
# Checks that every runtime dependency has a binary wheel for a 64-bit Raspberry Pi
# (Linux aarch64, CPython 3.11 as on Raspberry Pi OS Bookworm): downloads them, installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
deps=$("$PY" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml","rb"))["project"]["dependencies"]))')
platforms=()
for t in manylinux2014_aarch64 manylinux_2_17_aarch64 manylinux_2_24_aarch64 manylinux_2_27_aarch64 manylinux_2_28_aarch64; do
    platforms+=(--platform "$t")
done
mapfile -t reqs <<<"$deps"
"$PY" -m pip download -q --only-binary=:all: "${platforms[@]}" --python-version "${PI_PYTHON:-3.11}" \
    --implementation cp -d "$out" "${reqs[@]}"
ls "$out"
echo "all runtime dependencies have aarch64 wheels for CPython ${PI_PYTHON:-3.11}"
