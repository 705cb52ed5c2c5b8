#!/usr/bin/env bash
# The central Luigi scheduler (luigid) for this workstation or a team: one scheduler, many workers.
#
#   scripts/scheduler.sh              # foreground; Ctrl-C stops it
#
# Settings (environment): OVERNIGHT_SCHEDULER_PORT (8082), OVERNIGHT_SCHEDULER_ADDRESS (127.0.0.1;
# 0.0.0.0 lets workers on other machines in), OVERNIGHT_SCHEDULER_DIR (data/scheduler),
# OVERNIGHT_SCHEDULER_GPUS (the cards nvidia-smi lists here; 0 without any; for several hosts,
# the cards of all of them), OVERNIGHT_SCHEDULER_DISCONNECT_DELAY (60 s) and
# OVERNIGHT_SCHEDULER_RETRY_DELAY (120 s), said below. The web page
# is http://ADDRESS:PORT/ . Workers use it with
#   luigi --module tasks TuneModel --workers 2 --scheduler-host HOST --scheduler-port PORT
# (naming a scheduler on the command line is enough; a config file may say
# `[core] local_scheduler = false` with scheduler_host and scheduler_port instead).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${OVERNIGHT_SCHEDULER_PORT:-8082}"
address="${OVERNIGHT_SCHEDULER_ADDRESS:-127.0.0.1}"
state="${OVERNIGHT_SCHEDULER_DIR:-$repo/data/scheduler}"
luigid="$repo/.venv/bin/luigid"
[[ -x "$luigid" ]] || { echo "scheduler: $luigid is missing; run 'make demo' in $repo first" >&2; exit 2; }
mkdir -p "$state/logs"

# Detected without initialising CUDA: nvidia-smi only lists the cards. 0 is a real answer: on a
# machine without a card no task asks for the resource, so it limits nothing. When the workers
# have cards and this host has none, OVERNIGHT_SCHEDULER_GPUS says how many they share.
found=0
if command -v nvidia-smi > /dev/null 2>&1; then
    found="$(nvidia-smi --list-gpus 2> /dev/null | grep -c '^GPU' || true)"
fi
gpus="${OVERNIGHT_SCHEDULER_GPUS:-$found}"

# luigid's own settings: its state (finished tasks included, for a day) kept across restarts, and
# one unit of the `gpu` resource per card, so parallel trials and a nightly batch never share a
# card beyond it. (Luigi's record_task_history is off: luigi 3.8's history store executes raw
# strings, which SQLAlchemy 2 refuses; the runs table is overnight's history anyway.)
#
# A host that dies (power, SIGKILL) stops pinging: after worker_disconnect_delay its running task
# is failed, and after retry_delay it is offered again to the workers still waiting for the graph
# (they keep alive: tasks/base/cluster.py). Luigi's 900 s retry delay left a dead host's task
# waiting a quarter hour; two minutes here. A task that fails twice within the hour (a drifted
# night a waiting worker retried) is disabled for 15 minutes instead of retried all night; the
# scheduler's page can re-enable it sooner.
disconnect_delay="${OVERNIGHT_SCHEDULER_DISCONNECT_DELAY:-60}"
retry_delay="${OVERNIGHT_SCHEDULER_RETRY_DELAY:-120}"
cat > "$state/luigid.cfg" <<CONFIG
[scheduler]
state_path = $state/state.pickle
remove_delay = 86400
worker_disconnect_delay = $disconnect_delay
retry_delay = $retry_delay
retry_count = 2
disable_window = 3600
disable_persist = 900

[resources]
gpu = $gpus
CONFIG

echo "scheduler: luigid on http://$address:$port/ (state in $state)"
echo "scheduler: gpu resource $gpus (nvidia-smi lists $found card(s) here${OVERNIGHT_SCHEDULER_GPUS:+; OVERNIGHT_SCHEDULER_GPUS=$OVERNIGHT_SCHEDULER_GPUS})"
echo "scheduler: a worker joins with: luigi --module tasks TrainModel --scheduler-host $address --scheduler-port $port"
export LUIGI_CONFIG_PATH="$state/luigid.cfg"
exec "$luigid" --address "$address" --port "$port" --state-path "$state/state.pickle" --logdir "$state/logs"
