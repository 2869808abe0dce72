# A stand-in for the official python:3.11-slim-bookworm, built on a local Debian bookworm image,
# for machines that reach the Debian archive and PyPI but no container registry
# (`make docker-test` makes the Debian image with debootstrap and imports it).
#
#   docker build -f docker/base/python.Dockerfile --build-arg DEBIAN_IMAGE=medallion/debian:bookworm-YYYYMMDD \
#       -t medallion/python:3.11-slim-bookworm docker/base
#
# Same contract as the official image for docker/Dockerfile and docker/generator.Dockerfile:
# `python`, `python3` and `pip` on PATH, pip installs into the system interpreter as root, the
# Debian CA bundle in /etc/ssl/certs. Debian's Python 3.11 stands in for the official build.
ARG DEBIAN_IMAGE=medallion/debian:bookworm
FROM ${DEBIAN_IMAGE}

ENV LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED \
 && ln -s /usr/bin/python3 /usr/local/bin/python \
 && ln -s /usr/bin/pip3 /usr/local/bin/pip

CMD ["python3"]
