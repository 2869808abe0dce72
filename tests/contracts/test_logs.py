"""The log contract: JSON lines carry the event's fields; configuring twice keeps one handler."""

from __future__ import annotations

import json
import logging

import pytest

from medallion.contracts.logs import MICRO_BATCH, ROOT, configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> object:
    """These tests point the handler at pytest's captured stderr: undo it after each one."""
    logger = logging.getLogger(ROOT)
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield None
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def test_json_lines_carry_the_fields_of_a_micro_batch(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json")
    configure_logging("json")  # idempotent: still one line per record
    logging.getLogger(f"{ROOT}.pipeline").info(
        "silver %s micro-batch %d", "drivers", 3,
        extra={"event": MICRO_BATCH, "layer": "silver", "entity": "drivers", "batch_id": 3, "rows_in": 10, "lag_s": None},
    )
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["message"] == "silver drivers micro-batch 3"
    assert line["level"] == "info" and line["logger"] == "medallion.pipeline"
    assert {k: line[k] for k in ("event", "layer", "entity", "batch_id", "rows_in", "lag_s")} == {
        "event": MICRO_BATCH, "layer": "silver", "entity": "drivers", "batch_id": 3, "rows_in": 10, "lag_s": None}
    assert line["time"].endswith("+00:00")


def test_text_lines_read_as_sentences(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("text")
    logging.getLogger(f"{ROOT}.pipeline").info("bronze %s micro-batch %d: %d rows in", "drivers", 0, 12)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith("INFO bronze drivers micro-batch 0: 12 rows in")


def test_idle_passes_are_not_printed(capsys: pytest.CaptureFixture[str]) -> None:
    from medallion.contracts.logs import PASS

    configure_logging("text")
    logger = logging.getLogger(f"{ROOT}.pipeline")
    logger.info("pass done: %d queries ran", 0, extra={"event": PASS, "queries": 0, "idle": True})
    logger.info("pass done: %d queries ran", 3, extra={"event": PASS, "queries": 3, "idle": False})
    assert [line.split(" INFO ")[1] for line in capsys.readouterr().err.splitlines()] == ["pass done: 3 queries ran"]
