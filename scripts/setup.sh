#!/usr/bin/env bash
# One idempotent set-up step (README): OS packages, virtual environment, jars.
# A second run only checks stamps and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VENV="${MEDALLION_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# 1. OS packages: a JDK for Spark, PostgreSQL and MariaDB server binaries (never started as
#    services: medallion starts throwaway servers itself), and Chromium with a font, which the
#    report's test drives headless to check the page's layout.
need_pkgs=()
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium fonts-dejavu-core)
command -v java >/dev/null 2>&1 || need_pkgs+=(openjdk-17-jre-headless)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_pkgs+=(postgresql)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need_pkgs+=(mariadb-server-core mariadb-client)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  say "installing OS packages: ${need_pkgs[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  # policy-rc.d keeps Debian from starting the packaged services during installation.
  $SUDO sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
  $SUDO rm -f /usr/sbin/policy-rc.d
fi

# 2. Virtual environment with the project (editable) and its development tools.
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
# The stamp lives inside the venv: a venv made anew (deleted, or a fresh clone) always installs.
have="$(cat "$VENV/.medallion-pip.stamp" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  say "installing Python packages into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[dev]"
  echo "$want" > "$VENV/.medallion-pip.stamp"
fi

# 3. Jars (Delta, JDBC drivers) resolved once into .jars/, checked against pinned SHA-1 sums.
"$VENV/bin/medallion" setup
