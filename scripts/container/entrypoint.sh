#!/bin/sh
# The image's entry point: `overnight` and its arguments, or one of the few programs a user runs
# beside it (training is `luigi --module tasks RegisterModel ...`). Anything else is an overnight
# command: `du` means `overnight du`, not coreutils'.
case "${1:-}" in
    luigi | luigid | python | python3 | sh | bash) exec "$@" ;;
esac
exec overnight "$@"
