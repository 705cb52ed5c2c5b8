#!/usr/bin/env bash
# The cron entry for one night: score, log, monitor, take late labels in.
#
#   scripts/nightly.sh [YYYY-MM-DD]      (default: today)
#
# Works from any working directory and under cron's bare environment. Logs to
# data/logs/nightly-DATE.log. Exits 0 when all is well, 10 when the same date is already running,
# and non-zero (Luigi's [retcode] codes, 30 for a failed task or a drift alert) otherwise.
set -euo pipefail

date_arg="${1:-$(date +%F)}"
if ! [[ "$date_arg" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]]; then
    echo "nightly: expected a date as YYYY-MM-DD, got '$date_arg'" >&2
    exit 2
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
luigi_command="$repo/.venv/bin/luigi"
if [[ ! -x "$luigi_command" ]]; then
    echo "nightly: $luigi_command is missing; run 'make demo' (or make install) in $repo first" >&2
    exit 2
fi

mkdir -p data/logs
log="data/logs/nightly-$date_arg.log"

# One run per date at a time: a second start for the same date exits at once; other dates run.
# flock, not a pid file: the kernel drops the lock when its holder dies, even by SIGKILL, so a
# killed night never blocks the next start. Luigi inherits descriptor 9 and holds the lock to
# its end. Opened for appending: the loser must not wipe the holder's pid.
lock="data/logs/.nightly-$date_arg.lock"
exec 9>>"$lock"
if ! flock --nonblock 9; then
    holder="$(head -c 32 "$lock" 2>/dev/null | tr -dc 0-9 || true)"
    echo "nightly: $date_arg is already running${holder:+ (pid $holder)}; not starting twice (lock $repo/$lock)" | tee -a "$log" >&2
    exit 10
fi
echo "$$" > "$lock"

export PATH="$repo/.venv/bin:$PATH"
export HOME="${HOME:-$repo/data}"           # cron may give none; matplotlib wants a writable one
export MPLCONFIGDIR="${MPLCONFIGDIR:-$repo/data/.matplotlib}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

echo "nightly: $date_arg started $(date -Is)" >> "$log"
first_line=$(wc -l < "$log")
status=0
"$luigi_command" --module tasks Nightly --date "$date_arg" --no-lock >> "$log" 2>&1 || status=$?
if [[ $status -ne 0 ]]; then
    # One line for cron's mail: the reason, then where the whole story is.
    reason="$(tail -n +"$first_line" "$log" | grep -E 'Worker .* failed|Will not run|unavailable' | tail -n 1 | sed -E 's/^.*failed +//' || true)"
    echo "nightly: $date_arg FAILED (exit $status): ${reason:-see $log}" >&2
    echo "nightly: log in $repo/$log" >&2
else
    echo "nightly: $date_arg done; log in $repo/$log"
fi
echo "nightly: $date_arg ended $(date -Is) with exit $status" >> "$log"
exit $status
