#!/usr/bin/env bash
# `make image-test`: build the image from nothing and use it as a user would, then check what it
# left. In a mounted folder owned by whoever runs this, and as that user (--user):
#   1. SQLite in the folder: example data, a model trained (one epoch) and registered, one night;
#   2. the host's PostgreSQL (OVERNIGHT_TEST_POSTGRES_URL, a database of its own): the same;
#   3. the server answers /ping and /invocations, and the image's HEALTHCHECK passes.
# Asserted: the nights' rows in each database, every file in the folders owned by the invoking
# user, the image's default user not root, no compiler or tests in the image. Exit 0 when all hold.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if ! { command -v docker > /dev/null && docker info > /dev/null 2>&1; } && ! command -v podman > /dev/null; then
    echo "installing podman, buildah and mmdebstrap from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah mmdebstrap runc > /dev/null
fi
source "$here/engine.sh"
"$here/build_image.sh"
[ "$ENGINE" = podman ] && podman_run_flags

work="$(mktemp -d "${TMPDIR:-/tmp}/overnight-image-test.XXXXXX")"
server=""
cleanup() {
    [ -n "$server" ] && $ENGINE rm -f "$server" > /dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
user="$(id -u):$(id -g)"
night=2026-11-01  # the example data's first night (pipeline/examples.py)
postgres="${OVERNIGHT_TEST_POSTGRES_URL:-postgresql+psycopg2://postgres@127.0.0.1:5432/test}"
image_database="overnight_image_test"

in_image() {  # in_image FOLDER [ENV=VALUE ...] -- ARGUMENTS: one command in the image, FOLDER as /data
    local folder="$1" environment=()
    shift
    while [ "$1" != -- ]; do environment+=(-e "$1"); shift; done
    shift
    # --no-healthcheck: a job has no server to ask (and podman would ask systemd to schedule it).
    $RUN --rm --no-healthcheck --network host --user "${as:-$user}" -v "$folder:/data" "${environment[@]}" "$IMAGE" "$@"
}

timed() {  # timed LABEL COMMAND...: run it, then print its wall time
    local label="$1" started="$EPOCHREALTIME"
    shift
    "$@"
    awk -v label="$label" -v started="$started" -v ended="$EPOCHREALTIME" 'BEGIN { printf "%s: %.1f s\n", label, ended - started }'
}

one_database() {  # one_database NAME FOLDER [ENV=VALUE ...]: data, a model, a night
    local name="$1" folder="$2"
    shift 2
    mkdir -p "$folder"
    in_image "$folder" "$@" -- example-data
    timed "$name: training and registration" in_image "$folder" "$@" -- \
        luigi --module tasks RegisterModel --TrainModel-epochs 1 --workers 1
    timed "$name: overnight nightly $night in the image" in_image "$folder" "$@" -- nightly "$night"
}

echo "== what the image holds"
[ "$($RUN --rm --no-healthcheck "$IMAGE" sh -c 'id -u')" != 0 ] || { echo "the image runs as root" >&2; exit 1; }
$RUN --rm --no-healthcheck "$IMAGE" sh -c '! command -v gcc && ! command -v cc && ! ls /opt/overnight/lib/python3.11/site-packages | grep -qx tests' \
    || { echo "the image holds a compiler or the tests" >&2; exit 1; }

echo "== a folder the image's user cannot write: one line and exit 2"
mkdir "$work/not-writable"
set +e
refused="$($RUN --rm --no-healthcheck -v "$work/not-writable:/data" "$IMAGE" nightly "$night" 2>&1 > /dev/null)"
code=$?
set -e
[ "$code" = 2 ] && [ "$(echo "$refused" | grep -c .)" = 1 ] && echo "$refused" | grep -q "is not writable by uid 10001" \
    || { echo "expected exit 2 and one line, got $code: $refused" >&2; exit 1; }
echo "$refused"

echo "== SQLite in the mounted folder"
one_database sqlite "$work/sqlite"
python3 - "$work/sqlite/overnight.db" "$night" << 'PY'
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM predictions WHERE batch_date = ?", (sys.argv[2],)).fetchone()[0]
assert rows > 0, f"no predictions for {sys.argv[2]} in {sys.argv[1]}"
print(f"sqlite: {rows} predictions of {sys.argv[2]} in the mounted folder's database")
PY

echo "== the host's PostgreSQL"
admin="postgresql://${postgres#*://}"
psql -q "$admin" -c "DROP DATABASE IF EXISTS $image_database" -c "CREATE DATABASE $image_database"
url="${postgres%/*}/$image_database"
one_database postgresql "$work/postgresql" "OVERNIGHT_DATABASE_URL=$url"
rows="$(psql -tA "${admin%/*}/$image_database" -c "SELECT count(*) FROM predictions WHERE batch_date = '$night'")"
[ "$rows" -gt 0 ] || { echo "no predictions for $night in PostgreSQL" >&2; exit 1; }
echo "postgresql: $rows predictions of $night"
psql -q "$admin" -c "DROP DATABASE $image_database"

echo "== the server"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
server="overnight-image-test-$port"
# As docs/containers.md runs it: all addresses inside, the host's port mapped to the image's 8080.
$RUN -d --name "$server" -p "127.0.0.1:$port:8080" --user "$user" -v "$work/sqlite:/data" "$IMAGE" serve --host 0.0.0.0 > /dev/null 2> "$work/server-start.log"
python3 - "$port" "$work/sqlite/incoming/$night" << 'PY'
import base64, json, sys, time, urllib.request
from pathlib import Path
url = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(120):
    try:
        if urllib.request.urlopen(f"{url}/ping", timeout=2).status == 200:
            break
    except OSError:
        time.sleep(0.5)
else:
    raise SystemExit("the server in the image did not answer /ping in 60 s")
image = base64.b64encode(sorted(Path(sys.argv[2]).glob("*.png"))[0].read_bytes()).decode()
body = json.dumps({"instances": [{"image": image}]}).encode()
request = urllib.request.Request(f"{url}/invocations", body, {"Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(request, timeout=30))
assert answer["predictions"][0]["status"] == "ok", answer
print(f"serve: /ping answered; /invocations predicted {answer['predictions'][0]['prediction']!r}")
PY
if [ "$ENGINE" = podman ]; then
    podman healthcheck run "$server" > /dev/null || { echo "the image's HEALTHCHECK failed on the server" >&2; exit 1; }
else
    for _ in $(seq 40); do [ "$(docker inspect -f '{{.State.Health.Status}}' "$server")" = healthy ] && break; sleep 3; done
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$server")" = healthy ] || { echo "HEALTHCHECK: not healthy" >&2; exit 1; }
fi
echo "HEALTHCHECK: the server is healthy"
$ENGINE stop -t 30 "$server" > /dev/null

echo "== ownership"
foreign="$(find "$work/sqlite" "$work/postgresql" ! -uid "$(id -u)" | head -3)"
[ -z "$foreign" ] || { echo "files not owned by uid $(id -u): $foreign" >&2; exit 1; }
echo "every file in the mounted folders belongs to uid $(id -u), as --user said"
if [ "$(id -u)" = 0 ]; then  # root owns everything anyway: show --user with another uid too
    mkdir "$work/nobody" && chown 65534:65534 "$work/nobody"
    as=65534:65534 in_image "$work/nobody" -- example-data > /dev/null
    foreign="$(find "$work/nobody" ! -uid 65534 | head -3)"
    [ -z "$foreign" ] || { echo "files not owned by uid 65534: $foreign" >&2; exit 1; }
    echo "and with --user 65534:65534, every file belongs to uid 65534"
fi
echo "image-test passed"
