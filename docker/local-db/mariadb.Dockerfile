# Test-only stand-in for the official mysql:8.4 image when no registry is reachable: Debian
# bookworm's MariaDB, with an entrypoint that honours the same environment contract
# (MYSQL_DATABASE, MYSQL_USER, MYSQL_PASSWORD, MYSQL_ROOT_PASSWORD or MYSQL_RANDOM_ROOT_PASSWORD;
# data in /var/lib/mysql). Used by docker/docker-compose.local-db.yml (`make docker-test`).
ARG DEBIAN_IMAGE=medallion/debian:bookworm
FROM ${DEBIAN_IMAGE}

RUN apt-get update \
 && apt-get install -y --no-install-recommends mariadb-server mariadb-client \
 && rm -rf /var/lib/apt/lists/* /var/lib/mysql \
 && mkdir -p /var/lib/mysql /run/mysqld \
 && chown mysql:mysql /var/lib/mysql /run/mysqld

ENV LANG=C.UTF-8
COPY docker/local-db/mariadb-entrypoint.sh /usr/local/bin/mariadb-entrypoint
USER mysql
EXPOSE 3306
# SIGTERM (docker stop) shuts MariaDB down cleanly: it exits 0.
ENTRYPOINT ["mariadb-entrypoint"]
