"""Property: whatever bytes a scenario file holds, loading it gives a valid Scenario or one
MedallionError with a short message - never another exception, a hang or a huge message."""

from __future__ import annotations

import copy
import json
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generators.checks import check_scenario
from medallion.contracts.errors import MedallionError
from medallion.contracts.scenario_base import SCENARIO_DIR
from medallion.contracts.scenario_loader import load_scenario

MAX_MESSAGE = 4096
SECONDS_PER_LOAD = 10
BUILT_INS = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(SCENARIO_DIR.glob("*.yaml"))}
TEXTS = {name: (SCENARIO_DIR / f"{name}.yaml").read_text(encoding="utf-8") for name in BUILT_INS}

SETTINGS = settings(
    max_examples=150,
    deadline=timedelta(seconds=SECONDS_PER_LOAD),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same examples every run: a failure here is a real defect, not luck
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, 10**12, 10**18, 2**63, 10**300]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["0s", "1ms", "-5m", "9999999999999d", "1e400s", "9999-12-31T23:59:59Z", "../../etc/passwd", "a\n", "reflect('x')"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)),
    max_leaves=20,
)


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """A hard limit: the deadline only judges examples that finish."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"loading took more than {seconds}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def assert_loads_or_fails_cleanly(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_bytes(content)
        with time_limit(SECONDS_PER_LOAD):
            try:
                scenario = load_scenario(str(path))
                check_scenario(scenario)
                scenario.sha256()
            except MedallionError as exc:
                message = str(exc)
                assert message.strip()
                assert len(message) <= MAX_MESSAGE, message[:500]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated_scenarios(draw: st.DrawFn) -> bytes:
    """A built-in scenario with a few values replaced, removed or added at random places."""
    name = draw(st.sampled_from(sorted(BUILT_INS)))
    raw = copy.deepcopy(BUILT_INS[name])
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(_paths(raw)))
        if not path:
            continue
        parent = raw
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(values)
    dump = draw(st.sampled_from(["yaml", "json"]))
    text = yaml.safe_dump(raw, sort_keys=False) if dump == "yaml" else json.dumps(raw, default=str)
    return text.encode("utf-8", "surrogatepass")


@st.composite
def edited_texts(draw: st.DrawFn) -> bytes:
    """A built-in scenario's text with random characters spliced in (YAML syntax included)."""
    text = TEXTS[draw(st.sampled_from(sorted(TEXTS)))]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        cut = draw(st.integers(min_value=0, max_value=20))
        insert = draw(st.text(alphabet=st.sampled_from(list("&*!|>-:[]{},'\"#%@`? \n\t0123456789.eE+xa")), max_size=12))
        text = text[:at] + insert + text[at + cut :]
    return text.encode("utf-8", "surrogatepass")


@SETTINGS
@given(st.binary(max_size=2000))
def test_random_bytes(content: bytes) -> None:
    assert_loads_or_fails_cleanly(content)


@SETTINGS
@given(values)
def test_random_yaml_and_json_documents(document: Any) -> None:
    assert_loads_or_fails_cleanly(yaml.safe_dump(document).encode("utf-8", "surrogatepass"))
    assert_loads_or_fails_cleanly(json.dumps(document).encode("utf-8", "surrogatepass"))


@SETTINGS
@given(mutated_scenarios())
def test_mutated_built_in_scenarios(content: bytes) -> None:
    assert_loads_or_fails_cleanly(content)


@SETTINGS
@given(edited_texts())
def test_built_in_scenario_texts_with_spliced_characters(content: bytes) -> None:
    assert_loads_or_fails_cleanly(content)
