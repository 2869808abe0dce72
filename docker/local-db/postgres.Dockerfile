# Test-only stand-in for the official postgres:16 image when no registry is reachable: Debian
# bookworm's PostgreSQL, with an entrypoint that honours the same environment contract
# (POSTGRES_PASSWORD, POSTGRES_USER, POSTGRES_DB; data in /var/lib/postgresql/data).
# Used by docker/docker-compose.local-db.yml (`make docker-test`), never by users' stacks.
ARG DEBIAN_IMAGE=medallion/debian:bookworm
FROM ${DEBIAN_IMAGE}

# No cluster from the package's post-install: the entrypoint makes its own in PGDATA.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
 && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/no-main.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/*

ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    LANG=C.UTF-8
COPY docker/local-db/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
RUN mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"
USER postgres
EXPOSE 5432
# SIGTERM (docker stop) is PostgreSQL's "smart" shutdown: it exits 0.
ENTRYPOINT ["postgres-entrypoint"]
