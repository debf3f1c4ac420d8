#!/usr/bin/env bash
# Remove what scripts/install-pi.sh installed:
#
#   sudo scripts/uninstall-pi.sh            stop and disable the service, remove the unit,
#                                           /opt/digit-edge and /usr/local/bin/digit-edge
#   sudo scripts/uninstall-pi.sh --purge    also /etc/digit-edge (config, passwords),
#                                           /var/lib/digit-edge (sequence numbers, unsent
#                                           readings) and the digit-edge user
#
# --dry-run prints the commands and changes nothing; DESTDIR=DIR works on files under DIR
# only and skips systemctl and userdel (for the tests). Debian packages (python3-picamera2,
# python3-venv) stay: other software may use them.
set -euo pipefail

NAME=digit-edge
DESTDIR="${DESTDIR:-}"
PREFIX="/opt/$NAME"
ETC="/etc/$NAME"
STATE="/var/lib/$NAME"
UNIT="/etc/systemd/system/$NAME.service"
LINK="/usr/local/bin/$NAME"
DRY_RUN=0
PURGE=0

usage() { echo "usage: sudo $0 [--purge] [--dry-run]"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --purge) PURGE=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "uninstall-pi.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

# shellcheck source=scripts/pi-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/pi-lib.sh"
system() {
    if [ -n "$DESTDIR" ]; then show "(skipped, DESTDIR set)" "$@"; else run "$@"; fi
}

if [ -z "$DESTDIR" ] && [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    echo "uninstall-pi.sh: error: run me as root: sudo $0 $*" >&2
    exit 1
fi

say "service"
if [ -n "$DESTDIR" ] || [ -d /run/systemd/system ]; then
    if [ -e "$DESTDIR$UNIT" ]; then
        system systemctl disable --now "$NAME.service"
    fi
fi
run rm -f "$DESTDIR$UNIT"
if [ -n "$DESTDIR" ] || [ -d /run/systemd/system ]; then
    system systemctl daemon-reload
    system systemctl reset-failed "$NAME.service" 2>/dev/null || true
fi

say "program $PREFIX"
if [ -L "$DESTDIR$LINK" ] && [ "$(readlink "$DESTDIR$LINK")" = "$PREFIX/venv/bin/$NAME" ]; then
    run rm -f "$DESTDIR$LINK"
fi
run rm -rf "$DESTDIR$PREFIX"

if [ "$PURGE" -eq 1 ]; then
    say "purging configuration, state and the $NAME user"
    run rm -rf "$DESTDIR$ETC" "$DESTDIR$STATE"
    if getent passwd "$NAME" >/dev/null; then system userdel "$NAME"; fi
else
    say "kept $ETC (config) and $STATE (state, unsent readings); --purge removes them"
fi
