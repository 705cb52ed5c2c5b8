#!/bin/sh
# The image's entry point: `overnight` and its arguments, or one of the few programs a user runs
# beside it (training is `luigi --module tasks RegisterModel ...`). Anything else is an overnight
# command: `du` means `overnight du`, not coreutils'.
case "${1:-}" in
    python | python3 | sh | bash) exec "$@" ;;
esac

# Every stage writes under the data root, the /data volume: a folder mounted there that this
# user cannot write is one line here, not a traceback from the first task that tries.
volume="${OVERNIGHT_DATA_VOLUME:-/data}"
case "${1:-}" in
    "" | --help | -h | doctor) ;;
    *)
        if [ -d "$volume" ] && ! [ -w "$volume" ]; then
            echo "error: $volume is not writable by uid $(id -u): run with --user \"\$(id -u):\$(id -g)\" (the folder's owner) or make it writable for uid $(id -u)" >&2
            exit 2
        fi
        ;;
esac
case "${1:-}" in
    luigi | luigid) exec "$@" ;;
esac
exec overnight "$@"
