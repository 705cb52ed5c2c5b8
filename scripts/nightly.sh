#!/usr/bin/env bash
# The cron entry for one night: score, log, monitor, take late labels in.
#
#   scripts/nightly.sh [YYYY-MM-DD]      (default: today)
#
# Works from any working directory and under cron's bare environment; `overnight nightly` does
# the rest: one run per data set and date at a time, a log per data set and night in
# <data_root>/logs/nightly-DATE.log (0600 in a 0700 folder under [overnight] private), and the
# exit code (docs/nightly.md): 0 clean, 10 already running, 30 drift or a failed task,
# 31 a file quarantined, 32 the night's folder missing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"  # luigi.cfg and relative paths in it (data_root = data) mean what they mean in a shell here
overnight="$repo/.venv/bin/overnight"
if [[ ! -x "$overnight" ]]; then
    echo "nightly: $overnight is missing; run 'make demo' (or 'make test') in $repo first: either creates it" >&2
    exit 2
fi

export PATH="$repo/.venv/bin:$PATH"
if [[ -z "${HOME:-}" ]]; then
    # cron may give none; matplotlib and Keras want a writable one. Made owner-only when missing:
    # it is the default data root, which must not be left open because a cache came first.
    HOME="$repo/data"
    (umask 077 && mkdir -p "$HOME")
fi
export HOME
export MPLCONFIGDIR="${MPLCONFIGDIR:-$HOME/.cache/matplotlib}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

exec "$overnight" nightly "$@"
