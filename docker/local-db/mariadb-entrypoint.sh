#!/bin/bash
# The official mysql image's environment contract, for Debian's MariaDB: on an empty datadir,
# create the system tables, set root's password (MYSQL_ROOT_PASSWORD, or a random one printed
# once with MYSQL_RANDOM_ROOT_PASSWORD=yes), create MYSQL_DATABASE and MYSQL_USER with
# MYSQL_PASSWORD and every privilege on that database; then run the server in the foreground.
# Until then the server listens on a private socket only, so TCP health checks fail.
set -euo pipefail
datadir=/var/lib/mysql

sql_string() {  # a value as an SQL string literal: backslashes and quotes escaped
    local value=${1//\\/\\\\}
    printf "'%s'" "${value//\'/\\\'}"
}

if [ ! -d "$datadir/mysql" ]; then
    if [ -n "${MYSQL_ROOT_PASSWORD:-}" ]; then
        root_password=$MYSQL_ROOT_PASSWORD
    elif [ -n "${MYSQL_RANDOM_ROOT_PASSWORD:-}" ]; then
        root_password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
        echo "mariadb-entrypoint: GENERATED ROOT PASSWORD: $root_password"
    else
        echo "mariadb-entrypoint: set MYSQL_ROOT_PASSWORD or MYSQL_RANDOM_ROOT_PASSWORD=yes" >&2
        exit 1
    fi
    mariadb-install-db --datadir="$datadir" --auth-root-authentication-method=normal \
        --skip-test-db > /dev/null
    socket=/tmp/init.sock
    mariadbd --datadir="$datadir" --skip-networking --socket="$socket" &
    init_pid=$!
    for _ in $(seq 60); do
        mariadb-admin --socket="$socket" -uroot ping --silent 2> /dev/null && break
        sleep 1
    done
    {
        echo "DELETE FROM mysql.global_priv WHERE User = '';"
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_string "$root_password");"
        if [ -n "${MYSQL_DATABASE:-}" ]; then
            echo "CREATE DATABASE IF NOT EXISTS \`${MYSQL_DATABASE//\`/\`\`}\`;"
        fi
        if [ -n "${MYSQL_USER:-}" ]; then
            : "${MYSQL_PASSWORD:?set MYSQL_PASSWORD with MYSQL_USER}"
            echo "CREATE USER $(sql_string "$MYSQL_USER")@'%' IDENTIFIED BY $(sql_string "$MYSQL_PASSWORD");"
            if [ -n "${MYSQL_DATABASE:-}" ]; then
                echo "GRANT ALL ON \`${MYSQL_DATABASE//\`/\`\`}\`.* TO $(sql_string "$MYSQL_USER")@'%';"
            fi
        fi
        echo "FLUSH PRIVILEGES;"
    } | mariadb --socket="$socket" -uroot
    kill "$init_pid"
    wait "$init_pid"
    echo "mariadb-entrypoint: initialised $datadir (database ${MYSQL_DATABASE:-none}, user ${MYSQL_USER:-none})"
fi
exec mariadbd --datadir="$datadir" --bind-address=0.0.0.0 --port=3306 --socket=/run/mysqld/mysqld.sock
