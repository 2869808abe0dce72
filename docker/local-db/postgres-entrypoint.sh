#!/bin/bash
# The official postgres image's environment contract, for Debian's PostgreSQL: on an empty
# PGDATA, initdb with POSTGRES_USER (default postgres) as superuser and POSTGRES_PASSWORD
# (required), create POSTGRES_DB (default: the user name), accept password logins from the
# network; then run the server in the foreground.
set -euo pipefail
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (the superuser password)}"
user=${POSTGRES_USER:-postgres}
database=${POSTGRES_DB:-$user}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password_file=$(mktemp)
    printf '%s' "$POSTGRES_PASSWORD" > "$password_file"
    initdb --pgdata="$PGDATA" --username="$user" --pwfile="$password_file" --encoding=UTF8 \
        --auth-local=trust --auth-host=scram-sha-256 > /dev/null
    rm -f "$password_file"
    {
        echo "listen_addresses = '*'"
        echo "unix_socket_directories = '/tmp'"
    } >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "$database" != postgres ]; then
        # Single-user mode: no server, no socket; the name quoted as an SQL identifier.
        printf 'CREATE DATABASE "%s";\n' "${database//\"/\"\"}" | postgres --single -D "$PGDATA" postgres > /dev/null
    fi
    echo "postgres-entrypoint: initialised $PGDATA (user $user, database $database)"
fi
exec postgres -D "$PGDATA"
