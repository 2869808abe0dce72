"""Command-line settings of single scenario fields: `--set PATH=VALUE` (repeatable).

PATH is dotted into the scenario as the file spells it (`clock.speed`,
`entities.readings.arrival.rate`, `gold.0.window.size`); VALUE is read as YAML (`90`, `2h`,
`true`, `null`, `[3, 10]`). The path is checked against the scenario's JSON Schema before
anything is set, so a typo names the known fields at that level; the value is then validated
with the whole scenario by the same pydantic models as the file.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import yaml

from medallion.contracts.errors import ConfigError
from medallion.contracts.scenario import Scenario
from medallion.contracts.scenario_base import short

MAX_SETTINGS = 100
MAX_SETTING_CHARS = 1000
_EXAMPLE = "write e.g. --set clock.speed=90 or --set entities.readings.arrival.rate=2"


def parse_setting(text: str) -> tuple[list[str], Any]:
    """'a.b.c=VALUE' -> (['a', 'b', 'c'], the YAML value).

    Raises:
        ConfigError: not PATH=VALUE, an empty path segment, too long, or VALUE not YAML.
    """
    if len(text) > MAX_SETTING_CHARS:
        raise ConfigError("--set", [f"a setting of {len(text):,} characters; at most {MAX_SETTING_CHARS:,}"])
    path, sep, value_text = text.partition("=")
    segments = path.strip().split(".")
    if not sep or not all(segment.strip() for segment in segments):
        raise ConfigError("--set", [f"{short(text)} is not PATH=VALUE with a dotted PATH; {_EXAMPLE}"])
    segments = [segment.strip() for segment in segments]
    try:
        # An alias could repeat a node without copying it in the text: refused as in files.
        if any(isinstance(token, yaml.AliasToken) for token in yaml.scan(value_text)):
            raise ConfigError("--set", [f"{'.'.join(segments)}: aliases (*name) are not allowed; write the value out"])
        value = yaml.safe_load(value_text)
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as exc:
        problem = " ".join(str(exc).split())[:200]
        raise ConfigError("--set", [f"{'.'.join(segments)}: the value is not valid YAML ({problem}); quote text, e.g. name='a b'"]) from None
    return segments, value


def apply_settings(data: dict[str, Any], settings: Sequence[str]) -> dict[str, Any]:
    """A copy of the scenario mapping `data` (its profiles already applied) with each setting in,
    left to right (a later setting of the same path wins).

    Raises:
        ConfigError: a setting is malformed or its path names no field (with the known ones).
    """
    if len(settings) > MAX_SETTINGS:
        raise ConfigError("--set", [f"{len(settings)} settings; give at most {MAX_SETTINGS}"])
    result = copy.deepcopy(data)
    schema = Scenario.model_json_schema(mode="validation")
    for text in settings:
        segments, value = parse_setting(text)
        _check_path(schema, result, segments)
        node: Any = result
        for segment in segments[:-1]:
            key: Any = int(segment) if isinstance(node, list) else segment
            if isinstance(node, dict) and not isinstance(node.get(key), (dict, list)):
                node[key] = {}  # a section the file leaves to its defaults (e.g. `pipeline`)
            node = node[key]
        last = segments[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return result


def _check_path(schema: dict[str, Any], data: dict[str, Any], segments: list[str]) -> None:
    """Walk the JSON Schema (and, for named or numbered entries, the data) along the path."""
    defs = schema.get("$defs", {})
    nodes: list[dict[str, Any]] = [schema]
    value: Any = data
    for depth, segment in enumerate(segments):
        where = ".".join(segments[:depth]) or "the scenario"
        options = [resolved for node in nodes for resolved in _resolve(node, defs)]
        if isinstance(value, dict) and isinstance(value.get("kind"), str):
            # A sampler: only the branch of the kind the file gives (its fields are the known ones).
            of_kind = [o for o in options if o.get("properties", {}).get("kind", {}).get("const") == value["kind"]]
            options = of_kind or options
        found: list[dict[str, Any]] = []
        named: list[str] = []
        for option in options:
            properties = option.get("properties", {})
            if segment in properties:
                found.append(properties[segment])
            for pattern in option.get("patternProperties", {}).values():
                found.append(pattern)  # entries named by the file: the name must exist below
                named.append("entry")
            if option.get("type") == "array" and "items" in option:
                found.append(option["items"])
                named.append("item")
        has_property = any(segment in o.get("properties", {}) for o in options)
        if not has_property and named:
            known = sorted(map(str, value)) if isinstance(value, dict) else list(map(str, range(len(value)))) if isinstance(value, list) else []
            present = (isinstance(value, dict) and segment in value) or (
                isinstance(value, list) and segment.isdigit() and int(segment) < len(value)
            )
            if not present:
                raise ConfigError("--set", [
                    f"{'.'.join(segments)}: {where} has no {short(segment)}; it has {', '.join(known) or 'nothing'} "
                    "(--set changes existing entries; add new ones in the scenario file)"
                ])
        elif not has_property:
            fields = sorted({name for o in options for name in o.get("properties", {})})
            if not fields:
                raise ConfigError("--set", [f"{'.'.join(segments)}: {where} is a single value; set {where} itself"])
            raise ConfigError("--set", [
                f"{'.'.join(segments)}: {short(segment)} is not a field of {where}; known fields: {', '.join(fields)}"
            ])
        else:
            found = [o["properties"][segment] for o in options if segment in o.get("properties", {})]
        nodes = found
        if isinstance(value, dict):
            value = value.get(segment)
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            value = None


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """A schema node with its `$ref` followed and its `anyOf` / `oneOf` branches spread out."""
    if "$ref" in node:
        return _resolve(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    branches = node.get("anyOf") or node.get("oneOf")
    if branches:
        return [resolved for branch in branches for resolved in _resolve(branch, defs)]
    return [node]
