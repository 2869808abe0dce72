"""Every exception medallion raises on purpose, with messages that tell the user what to do.

This module is pure Python (no Spark, no numpy) so the generator can use it in a slim container.
"""

from __future__ import annotations


class MedallionError(Exception):
    """Base class: the CLI prints these without a traceback and exits non-zero."""

    exit_code = 1


class ConfigError(MedallionError):
    """A scenario or option is invalid. Names the field, the bad value and the fix."""

    exit_code = 2

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


class UnknownScenarioError(ConfigError):
    """`--scenario NAME` names no built-in scenario (nor one in $MEDALLION_SCENARIO_DIR)."""

    def __init__(self, name: str, available: list[str], where: str) -> None:
        message = (f"no scenario named {name}; available: {', '.join(available) or 'none'} "
                   f"(in {where}), or give the path of a YAML file")
        super().__init__("--scenario", [message])
        self.args = (message,)


class SetupError(MedallionError):
    """Something the project installs or resolves (jars, OS packages, servers) is missing."""

    exit_code = 3


class UnsafePathError(MedallionError):
    """A path inside the data root leads out of it (a symlink), or is not the project's to touch."""

    exit_code = 2


class DatabaseError(MedallionError):
    """A database server could not be started, reached or written."""

    exit_code = 4


class ExportError(DatabaseError):
    """An export could not complete (target schema differs, NULL keys, a concurrent export).

    The target is left as it was before the failed run; the message says how to proceed.
    """


class IdentifierError(MedallionError):
    """A table or column name would reach SQL but is outside the identifier allowlist."""

    exit_code = 2


class PipelineError(MedallionError):
    """A streaming job failed or refused to start (e.g. a second copy on one checkpoint)."""

    exit_code = 5


class QualityAlert(MedallionError):
    """A batch's quality score fell below the scenario's threshold (in `--once` mode)."""

    exit_code = 6


class VerificationFailed(MedallionError):
    """`medallion verify` found at least one invariant that does not hold."""

    exit_code = 7


class GeneratorError(MedallionError):
    """The generator cannot write here (another generator holds the data root, or the data
    root holds a different run)."""

    exit_code = 8
