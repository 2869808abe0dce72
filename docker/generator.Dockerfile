# The slim generator image: Python + numpy/pydantic/pyyaml (+ rich for progress, FastAPI and
# uvicorn for the `--serve` control API). No Java, no pyspark: `medallion generate` never
# imports Spark.
#
#   docker build -f docker/generator.Dockerfile -t medallion-generator:0.1.0 .   # from the checkout root
#
# BASE_IMAGE and the extra_ca secret: as in docker/Dockerfile.
#
# tests/docker/test_docker_commands.py builds the same thing without Docker: a fresh venv,
# these requirements, the same sources, `pip install --no-deps -e .`, and the compose command.
ARG BASE_IMAGE=python:3.11.13-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/medallion
COPY docker/base/with-extra-ca.sh /usr/local/bin/with-extra-ca

COPY docker/generator-requirements.txt /tmp/generator-requirements.txt
RUN --mount=type=secret,id=extra_ca with-extra-ca pip install -r /tmp/generator-requirements.txt

# spark_jobs/ stays out on purpose: the generator must not need it.
COPY pyproject.toml README.md ./
COPY medallion medallion
COPY generators generators
COPY configs configs
# --no-deps: pyproject.toml lists pyspark & co. for the full install. The built-in scenarios
# are package data (medallion/contracts/scenarios/; configs/scenarios links there).
RUN --mount=type=secret,id=extra_ca with-extra-ca pip install --no-deps -e .

# A plain user, the same uid as the Spark image: both write the shared /data volume.
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin medallion \
 && mkdir -p /data && chown medallion:medallion /data
USER medallion

# The generator stops after the batch in hand on SIGTERM (`docker compose stop`) and exits 0.
CMD ["medallion", "generate", "--help"]
