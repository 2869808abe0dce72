"""Read docker/ the way Docker Compose and `docker build` would, without Docker.

- `load_compose(env)`: docker-compose.yml parsed and interpolated (`${VAR}`, `${VAR:-default}`,
  `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `$$`) like `docker compose config`;
- `referenced_variables()`: every variable the file interpolates;
- `command_of`, `environment_of`: a service's command as a list, its environment as a dict;
- `localise`: a container command or value with container paths/hosts swapped for local ones;
- `dockerfile_instructions`: a Dockerfile as (INSTRUCTION, arguments) pairs, continuations joined.

Used by tests/docker/test_docker_files.py (structure) and
tests/docker/test_docker_commands.py (the same commands, run locally).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
DOCKERFILE = DOCKER / "Dockerfile"
GENERATOR_DOCKERFILE = DOCKER / "generator.Dockerfile"
GENERATOR_REQUIREMENTS = DOCKER / "generator-requirements.txt"
DOCKER_README = DOCKER / "README.md"

# `$$` is a literal dollar; otherwise ${NAME}, ${NAME<op>ARG} or $NAME (Compose's grammar).
_VARIABLE = re.compile(
    r"\$\$"
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?)(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


class MissingVariable(LookupError):
    """A `${VAR:?message}` (or `${VAR?message}`) whose variable is unset: Compose refuses to start."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"required variable {name} is missing a value: {message}")
        self.name = name


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """One string with Compose's variable substitution applied."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        # With a colon, empty counts as unset.
        missing = not value if op in (":-", ":?") else value is None
        if not missing:
            return value or ""
        if op in (":-", "-"):
            return interpolate(arg, env)
        if op in (":?", "?"):
            raise MissingVariable(name, arg)
        return ""  # Compose substitutes an unset plain ${VAR} with the empty string (and warns)

    return _VARIABLE.sub(substitute, text)


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


def raw_compose() -> dict[str, Any]:
    """The compose file as YAML, anchors and merge keys resolved, nothing interpolated."""
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def load_compose(env: Mapping[str, str]) -> dict[str, Any]:
    """The compose file as `docker compose config` would see it with this environment."""
    interpolated = _interpolate_tree(raw_compose(), env)
    assert isinstance(interpolated, dict)
    return interpolated


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [text for item in node for text in _strings(item)]
    if isinstance(node, dict):
        return [text for value in node.values() for text in _strings(value)]
    return []


def _variables(text: str | None) -> list[re.Match[str]]:
    # Compose interpolates values, not comments: scan the parsed file's strings.
    sources = _strings(raw_compose()) if text is None else [text]
    return [m for source in sources for m in _VARIABLE.finditer(source) if m.group(0) != "$$"]


def referenced_variables(text: str | None = None) -> set[str]:
    """Names of every variable the compose file's values (or `text`) interpolate."""
    return {m.group("name") or m.group("bare") for m in _variables(text)}


def required_variables(text: str | None = None) -> set[str]:
    """Variables written `${VAR:?...}` or `${VAR?...}`: Compose stops when they are unset."""
    return {m.group("name") for m in _variables(text) if m.group("op") in (":?", "?")}


def command_of(service: Mapping[str, Any]) -> list[str]:
    """The service's command as an argument list (this project writes exec form only)."""
    command = service.get("command")
    assert isinstance(command, list), f"command must be a list (exec form), got {command!r}"
    return [str(part) for part in command]


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    """The service's `environment` as a dict, whether written as a mapping or a KEY=VALUE list."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(item.split("=", 1) for item in environment)
    return {str(key): "" if value is None else str(value) for key, value in environment.items()}


def localise(value: str, replacements: Mapping[str, str]) -> str:
    """`value` with container paths, hosts and ports replaced (longest first, so
    `spark://spark-master:7077` wins over `spark-master`)."""
    for old in sorted(replacements, key=len, reverse=True):
        value = value.replace(old, replacements[old])
    return value


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction; comments dropped, `\\` continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending = f"{pending} {stripped}" if pending else stripped
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, arguments = pending.partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return instructions


def copied_sources(path: Path) -> list[str]:
    """Build-context paths a Dockerfile COPYs (sources of every COPY without --from)."""
    sources: list[str] = []
    for keyword, arguments in dockerfile_instructions(path):
        if keyword == "COPY" and "--from" not in arguments:
            parts = [p for p in arguments.split() if not p.startswith("--")]
            sources.extend(parts[:-1])
    return sources


def run_commands(path: Path) -> list[str]:
    """The shell command of every RUN, its `--mount=...` options (build secrets) left out."""
    return [re.sub(r"^(--mount=\S+\s+)+", "", arguments)
            for keyword, arguments in dockerfile_instructions(path) if keyword == "RUN"]


def dockerfile_base_image(path: Path) -> str:
    """The image a Dockerfile builds on by default: `ARG BASE_IMAGE=x` then `FROM ${BASE_IMAGE}`."""
    instructions = dockerfile_instructions(path)
    (arg, default), (keyword, base) = instructions[0], instructions[1]
    assert arg == "ARG" and keyword == "FROM" and base == "${BASE_IMAGE}", instructions[:2]
    name, _, value = default.partition("=")
    assert name == "BASE_IMAGE", default
    return value
