"""Loading a scenario: name or path -> YAML (bounded, no aliases) -> profile overlays -> models.

Errors name the field and the fix; values of secret-looking fields are never shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from medallion.contracts.errors import ConfigError, UnknownScenarioError
from medallion.contracts.scenario import (
    Scenario,
)
from medallion.contracts.scenario_base import (
    MAX_MESSAGE_PROBLEMS,
    MAX_PROBLEM_CHARS,
    MAX_PROFILES_COMBINED,
    MAX_SCENARIO_BYTES,
    MAX_YAML_DEPTH,
    SCENARIO_DIR,
    bounded_problems,
    short,
)
from medallion.contracts.scenario_settings import apply_settings


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """NAME -> SCENARIO_DIR/NAME.yaml (the built-ins); anything with a suffix or a slash is a path."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text).expanduser()
    else:
        path = SCENARIO_DIR / f"{text}.yaml"
    if not path.is_file():
        if path.parent == SCENARIO_DIR:  # a name, not a path
            known = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
            raise UnknownScenarioError(text[:80] if text.isprintable() else short(text), known, str(SCENARIO_DIR))
        raise ConfigError(str(path), ["no such file; check the path, or give a built-in scenario NAME"])
    return path


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Overlay wins; nested mappings merge key by key; lists and scalars are replaced."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class ScenarioLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses aliases and deep nesting.

    An alias (`*name`) repeats an anchored node without copying it in the file, so a few
    lines of nested aliases expand to gigabytes once a value is copied, hashed or printed.
    Scenarios are small; anchors alone are harmless, aliases are refused. Nesting is bounded
    so the recursive composer cannot exhaust the stack.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in scenario files; write the value out", event.start_mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _one_line(text: str, limit: int = 300) -> str:
    joined = " ".join(text.split())
    return joined if len(joined) <= limit else joined[: limit - 3] + "..."


def read_scenario_file(path: Path) -> dict[str, Any]:
    """The mapping of a scenario file: UTF-8 YAML, at most MAX_SCENARIO_BYTES, no aliases."""
    source = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SCENARIO_BYTES + 1)
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {short(exc.strerror or str(exc))}"]) from None
    if len(data) > MAX_SCENARIO_BYTES:
        raise ConfigError(source, [f"the file is larger than {MAX_SCENARIO_BYTES:,} bytes; a scenario is a small YAML file"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"]) from None
    try:
        raw = yaml.load(text, Loader=ScenarioLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"not valid YAML: {_one_line(str(exc))}"]) from None
    except (ValueError, OverflowError, RecursionError) as exc:
        # PyYAML's constructors raise these for e.g. an integer of more than 4,300 digits.
        raise ConfigError(source, [f"not valid YAML: {_one_line(str(exc))}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError(source, ["the file must hold a mapping with name, clock and entities"])
    return raw


def load_scenario(
    name_or_path: str | Path,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    settings: Sequence[str] = (),
) -> Scenario:
    """Read, overlay and validate a scenario; raise ConfigError naming every bad field."""
    path = resolve_scenario_path(name_or_path)
    raw = read_scenario_file(path)
    return scenario_from_dict(raw, source=str(path), profile=profile, overrides=overrides, settings=settings)


def scenario_from_dict(
    raw: dict[str, Any],
    source: str = "<scenario>",
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    settings: Sequence[str] = (),
) -> Scenario:
    """Validate an already-parsed scenario mapping (with optional profiles, overrides and
    `--set PATH=VALUE` settings, applied in that order).

    Every profile is validated too (as the file with that overlay), so a broken profile is
    reported when the file is loaded, not only when someone selects it.
    """
    data = dict(raw)
    profiles = data.get("profiles") or {}
    if not isinstance(profiles, dict) or not all(isinstance(p, dict) for p in profiles.values()):
        raise ConfigError(source, ["profiles: must map each profile name to a mapping of overrides, e.g. {small: {clock: {speed: 1}}}"])
    if profile is not None:
        names = profile_names(profile, profiles, source)
        for name in names:  # left to right: a later profile wins
            data = deep_merge(data, profiles[name])
        data["profile"] = ",".join(names)
    if overrides:
        data = deep_merge(data, overrides)
    if settings:
        data = apply_settings(data, settings)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        found = describe_validation_error(exc)
        if settings:
            found.append(f"with --set {' --set '.join(short(s, 60).strip(chr(39)) for s in settings)}: fix the value named above")
        raise ConfigError(source, bounded_problems(found)) from None
    problems: list[str] = []
    base = {k: v for k, v in raw.items() if k != "profile"}
    for name, overlay in profiles.items():
        if name == profile:
            continue
        try:
            Scenario.model_validate({**deep_merge(base, overlay), "profile": name})
        except ValidationError as exc:
            problems += [f"profiles.{name}: {p}" for p in describe_validation_error(exc)]
    if problems:
        raise ConfigError(source, bounded_problems(problems))
    return scenario


def profile_names(profile: str, profiles: dict[str, Any], source: str = "<scenario>") -> list[str]:
    """`--profile a,b` -> ["a", "b"], each a profile of the scenario (at most MAX_PROFILES_COMBINED).

    Raises:
        ConfigError: an empty or unknown name, naming the known ones.
    """
    known = short(", ".join(sorted(map(str, profiles))), 200).strip("'") or "no profiles"
    names = [name.strip() for name in str(profile).split(",")]
    if len(names) > MAX_PROFILES_COMBINED:
        raise ConfigError(source, [f"--profile: {len(names)} profiles; combine at most {MAX_PROFILES_COMBINED}"])
    problems = []
    for name in names:
        if not name:
            problems.append(f"--profile: an empty name in {short(profile)}; write names separated by commas, e.g. small,cadence_5s")
        elif name not in profiles:
            problems.append(
                f"--profile: unknown profile {short(name)}; this scenario has {known} "
                "(combine them with commas, applied left to right: a later one wins)"
            )
    if problems:
        raise ConfigError(source, problems)
    return names


_SECRET_FIELD = re.compile(r"(password|secret|token|url|_env)[^.]*$", re.IGNORECASE)


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One line per problem: dotted field path, the bad value, and what to write instead."""
    problems = []
    errors = exc.errors(include_url=False, include_context=False)
    for error in errors[:MAX_MESSAGE_PROBLEMS]:
        # Each part bounded: a key of the file can be arbitrarily long.
        parts = [short(part, 40) if not isinstance(part, (str, int)) else str(part)[:40] for part in error["loc"]]
        location = ".".join(part for part in parts if not part.startswith("function-"))[:200]
        message = error["msg"].removeprefix("Value error, ")[:MAX_PROBLEM_CHARS]
        bad = error.get("input")
        if error["type"] == "extra_forbidden":
            fix = "remove it or check its spelling against `medallion schema`"
            problems.append(f"{location}: unknown field; {fix}")
        elif error["type"] == "missing":
            problems.append(f"{location}: required field is missing; add it")
        elif not location:  # a whole-scenario check: its message names the fields itself
            problems.append(message)
        elif _SECRET_FIELD.search(location):
            # A value typed here may be the secret itself (a password in `password_env`, a
            # URL with credentials): say what is wrong, never what was written.
            problems.append(f"{location}: {message} (value not shown: it may be a secret)")
        else:
            problems.append(f"{location}: {message} (got {_shown(bad)})")
    if len(errors) > MAX_MESSAGE_PROBLEMS:
        problems.append(f"... and {len(errors) - MAX_MESSAGE_PROBLEMS} more problem(s)")
    return problems


def _shown(value: Any) -> str:
    """A bad input for a message, JSON-like and at most 80 characters, never fully formatted."""
    if isinstance(value, str):
        return json.dumps(value[:80])[:80]
    if isinstance(value, float) or value is None or isinstance(value, bool):
        return json.dumps(value)
    return short(value)


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema of the scenario file format, for editors (`medallion schema`)."""
    return Scenario.model_json_schema(mode="validation")
