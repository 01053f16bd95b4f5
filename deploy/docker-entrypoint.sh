#!/bin/sh
# The broker image's entry point: BROKER_DATABASE_URL_FILE (a mounted secret holding the database
# URL with its password) sets BROKER_DATABASE_URL, so the password is never in the compose file, the
# manifest or a process listing. Then runs the command given (broker serve by default).
set -eu
if [ -n "${BROKER_DATABASE_URL_FILE:-}" ]; then
  BROKER_DATABASE_URL=$(cat "$BROKER_DATABASE_URL_FILE")
  export BROKER_DATABASE_URL
  unset BROKER_DATABASE_URL_FILE
fi
exec "$@"
