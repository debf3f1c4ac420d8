#!/usr/bin/env bash
# Install digit-edge as a systemd service on a Raspberry Pi (64-bit Raspberry Pi OS), or any
# Debian-like system with systemd. Run it as root from a checkout:
#
#   sudo scripts/install-pi.sh [--source picamera] [--no-start]
#
# What it does (each command is printed before it runs; --dry-run prints and changes nothing):
#   1. apt: python3-venv, and python3-picamera2 where the OS packages it (Raspberry Pi OS)
#   2. system user digit-edge, in group video (cameras)
#   3. /opt/digit-edge/venv (--system-site-packages, so the OS's picamera2 is visible) with
#      this checkout pip-installed into it; `digit-edge` linked into /usr/local/bin
#   4. /etc/digit-edge/config.yaml from the checkout's config.yaml — only if absent, never
#      overwritten; /var/lib/digit-edge for the state
#   5. /etc/systemd/system/digit-edge.service, daemon-reload, enable, (re)start
# Re-running it upgrades the installed package and unit and keeps the config.
#
# DESTDIR=/some/dir puts the files under that directory and skips everything that changes
# the running system (apt, users, venv, systemctl): for packaging and for the tests.
set -euo pipefail

NAME=digit-edge
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DESTDIR="${DESTDIR:-}"
PREFIX="/opt/$NAME"
VENV="$PREFIX/venv"
ETC="/etc/$NAME"
STATE="/var/lib/$NAME"
UNIT="/etc/systemd/system/$NAME.service"
LINK="/usr/local/bin/$NAME"
PYTHON="${PYTHON:-/usr/bin/python3}"
DRY_RUN=0
START=1
SOURCE_SPEC=""

usage() {
    cat <<EOF
usage: sudo $0 [--source SPEC] [--no-start] [--dry-run]

  --source SPEC  camera for a NEW /etc/digit-edge/config.yaml: picamera, usb:0, ... (default:
                 the checkout's config.yaml as is, which reads the built-in demo scenes)
  --no-start     install and enable, but do not (re)start the service now
  --dry-run      print the commands, change nothing
Environment: DESTDIR=DIR installs the files under DIR only; PYTHON=python3 to build the venv.
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --source) [ $# -ge 2 ] || { usage >&2; exit 2; }; SOURCE_SPEC="$2"; shift 2 ;;
        --source=*) SOURCE_SPEC="${1#--source=}"; shift ;;
        --no-start) START=0; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install-pi.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

# shellcheck source=scripts/pi-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/pi-lib.sh"
warn() { printf 'install-pi.sh: warning: %s\n' "$*" >&2; }
die() { printf 'install-pi.sh: error: %s\n' "$*" >&2; exit 1; }
# system CMD...: like run, but skipped when installing into DESTDIR.
system() {
    if [ -n "$DESTDIR" ]; then show "(skipped, DESTDIR set)" "$@"; else run "$@"; fi
}

for needed in pyproject.toml config.yaml "systemd/$NAME.service" docs/pi-install.md; do
    [ -f "$SRC/$needed" ] || die "$SRC/$needed missing: run me from a digit-edge checkout"
done
if [ -z "$DESTDIR" ] && [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "run me as root: sudo $0 $*"
fi

case "$(uname -m)" in
    aarch64|x86_64) ;;
    armv7l|armv6l)
        warn "32-bit OS ($(uname -m)): ai-edge-litert has no wheel for it, so the fallback" \
             "tflite-runtime is installed with numpy<2; it is ~7x slower. A 64-bit Raspberry Pi OS is" \
             "recommended (docs/pi-install.md)." ;;
    *) warn "untested architecture $(uname -m)" ;;
esac
if [ -z "$DESTDIR" ] && [ ! -d /run/systemd/system ]; then
    warn "systemd is not running here: the unit is installed but cannot be started"
    START=0
fi

say "Debian packages"
if command -v apt-get >/dev/null 2>&1; then
    PKGS=(python3-venv python3-pip)
    # Raspberry Pi OS packages picamera2 (with libcamera); plain Debian does not.
    if [ -z "$DESTDIR" ] && apt-cache show python3-picamera2 >/dev/null 2>&1; then
        PKGS+=(python3-picamera2)
    fi
    system env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PKGS[@]}"
else
    warn "no apt-get: make sure python3 (>= 3.11) with venv is installed"
fi

say "user $NAME (group video for the cameras)"
if ! getent group video >/dev/null; then system groupadd --system video; fi
if getent passwd "$NAME" >/dev/null; then
    system usermod --append --groups video "$NAME"
else
    system useradd --system --user-group --groups video --home-dir "$STATE" --no-create-home \
        --shell /usr/sbin/nologin --comment "digit-edge daemon" "$NAME"
fi

say "virtual environment $VENV"
if [ -z "$DESTDIR" ] && [ "$DRY_RUN" -eq 0 ]; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$PYTHON is older than 3.11; use Raspberry Pi OS bookworm or newer"
fi
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
# picamera2's helpers from apt (simplejpeg, ...) are built against the OS's numpy: when that
# is numpy 1.x, a numpy 2 in the venv breaks `import picamera2`, so stay on 1.x too (and on
# an OpenCV that still supports it).
SYSTEM_NUMPY="$("$PYTHON" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)"
case "$(uname -m):$SYSTEM_NUMPY" in
    armv7l:*|armv6l:*|*:1.*)
        printf 'numpy<2\nopencv-python-headless<4.12\n' > "$CONSTRAINTS"
        say "pinning numpy<2 (system numpy: ${SYSTEM_NUMPY:-none}; 32-bit or picamera2 built on 1.x)" ;;
esac
EXTRA=()
case "$(uname -m)" in armv7l|armv6l) EXTRA+=(tflite-runtime) ;; esac
if [ ! -x "$DESTDIR$VENV/bin/python" ]; then
    system "$PYTHON" -m venv --system-site-packages "$VENV"
fi
system "$VENV/bin/python" -m pip install --upgrade --constraint "$CONSTRAINTS" "$SRC" "${EXTRA[@]}"
run install -d -m 0755 "$DESTDIR$PREFIX/docs" "$DESTDIR/usr/local/bin"
run install -m 0644 "$SRC/docs/pi-install.md" "$DESTDIR$PREFIX/docs/pi-install.md"
run ln -sfn "$VENV/bin/$NAME" "$DESTDIR$LINK"

say "configuration $ETC and state $STATE"
OWNER=()
if [ -z "$DESTDIR" ]; then OWNER=(-o root -g "$NAME"); fi
run install -d -m 0755 "$DESTDIR$ETC"
if [ -e "$DESTDIR$ETC/config.yaml" ]; then
    say "keeping the existing $ETC/config.yaml (compare with $SRC/config.yaml after upgrades)"
else
    run install -m 0640 "${OWNER[@]}" "$SRC/config.yaml" "$DESTDIR$ETC/config.yaml"
    if [ -n "$SOURCE_SPEC" ]; then
        # Quoted for YAML; escaped for sed's replacement (\, | and &).
        quoted="'${SOURCE_SPEC//\'/\'\'}'"
        quoted="$(printf '%s' "$quoted" | sed -e 's/[\\|&]/\\&/g')"
        printf '+ (edit) %s: source: %s\n' "$ETC/config.yaml" "$SOURCE_SPEC"
        if [ "$DRY_RUN" -eq 0 ]; then
            sed -i -E "s|^source:[[:space:]]*[^#]*#|source: $quoted  #|" "$DESTDIR$ETC/config.yaml"
        fi
    fi
fi
if [ -z "$DESTDIR" ]; then OWNER=(-o "$NAME" -g "$NAME"); fi
run install -d -m 0700 "${OWNER[@]}" "$DESTDIR$STATE"

say "systemd unit $UNIT"
run install -D -m 0644 "$SRC/systemd/$NAME.service" "$DESTDIR$UNIT"
system systemctl daemon-reload
system systemctl enable "$NAME.service"
if [ "$START" -eq 1 ]; then
    system systemctl restart "$NAME.service"
fi

if [ "$DRY_RUN" -eq 1 ]; then echo; echo "(dry run: nothing was changed)"; exit 0; fi
cat <<EOF

digit-edge is installed.
  settings:     sudoedit $ETC/config.yaml   (then: sudo systemctl reload $NAME)
  check setup:  sudo -u $NAME STATE_DIRECTORY=$STATE $NAME doctor
  status:       systemctl status $NAME
  logs:         journalctl -u $NAME -f       (errors only: journalctl -u $NAME -p warning)
  uninstall:    sudo $SRC/scripts/uninstall-pi.sh [--purge]
EOF
