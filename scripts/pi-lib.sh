# Shared by install-pi.sh and uninstall-pi.sh (sourced, not run): how each step is shown and run.
# The caller sets DRY_RUN (0 or 1) before calling run.

say() { printf '==> %s\n' "$*"; }
# show [NOTE] CMD...: print a command as it could be pasted into a shell.
show() {
    local note=""
    case "$1" in "("*")") note=" $1"; shift ;; esac
    printf '+%s' "$note"; printf ' %q' "$@"; printf '\n'
}
# run CMD...: print it, then run it (unless --dry-run).
run() { show "$@"; if [ "$DRY_RUN" -eq 0 ]; then "$@"; fi; }
