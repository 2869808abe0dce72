"""The defect vocabulary (docs/design.md §3.5): the kinds of defect the generator writes, the
fate the pipeline gives each, and the silver rules that catch them.

Every part speaks it: scenario validation (the `defects:` rates), the generator and its
ledger, silver's rules and `medallion verify`. The members are `StrEnum`s whose values are the
strings the scenario YAML, the ledger JSON and the tables hold, so the text is unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class Fate(StrEnum):
    """What the pipeline does with a line of a defect kind."""

    QUARANTINE = "quarantine"  # silver refuses it: a row of the quarantine table
    DEDUPE = "dedupe"  # a repeat of a line silver already holds: dropped by key
    KEEP = "keep"  # a valid record despite the defect: a silver row


# The one drift change silver accepts: an extra field is ignored, a rename or retype is not.
ADDED_FIELD = "add"


class DefectKind(StrEnum):
    """A kind of defective line, as the scenario rates it and the ledger records it."""

    MALFORMED_JSON = "malformed_json"
    NULL_REQUIRED = "null_required"
    WRONG_TYPE = "wrong_type"
    OUT_OF_RANGE = "out_of_range"
    DUPLICATE = "duplicate"
    LATE = "late"
    OUT_OF_ORDER = "out_of_order"
    ORPHAN_FK = "orphan_fk"
    SCHEMA_DRIFT = "schema_drift"

    def fate(self, change: str | None = None) -> Fate:
        """The pipeline's fate for a line of this kind; `change` is a drift's (add, rename, retype)."""
        if self is DefectKind.SCHEMA_DRIFT:
            return Fate.KEEP if change == ADDED_FIELD else Fate.QUARANTINE
        return _FATES[self]

    @property
    def checks(self) -> tuple[SilverCheck, ...]:
        """The silver rules that quarantine this kind (none for the kinds silver keeps or dedupes)."""
        return tuple(check for check in SilverCheck if check.kind is self)


_FATES: dict[DefectKind, Fate] = {
    DefectKind.MALFORMED_JSON: Fate.QUARANTINE,
    DefectKind.NULL_REQUIRED: Fate.QUARANTINE,
    DefectKind.WRONG_TYPE: Fate.QUARANTINE,
    DefectKind.OUT_OF_RANGE: Fate.QUARANTINE,
    DefectKind.ORPHAN_FK: Fate.QUARANTINE,
    DefectKind.DUPLICATE: Fate.DEDUPE,
    DefectKind.LATE: Fate.KEEP,
    DefectKind.OUT_OF_ORDER: Fate.KEEP,
}


# Sensor anomalies (docs/design.md §3.5, "Anomalies"): unusual but valid readings the generator
# records in the manifest's `anomalies` list. They are not defects: the line is clean, silver
# keeps it, and only gold's anomaly flags are meant to notice it.
ANOMALY_KIND = "anomaly"
ANOMALY_FATE = Fate.KEEP


class AnomalySubtype(StrEnum):
    """What a sensor anomaly does to the readings of one unit and field over [start, end]."""

    SPIKE = "spike"  # one reading jumps by `magnitude`
    STUCK = "stuck"  # the sensor repeats one value (`value`) for every reading
    DRIFT = "drift"  # calibration drift: readings grow by up to `magnitude`


class SilverCheck(StrEnum):
    """A schema-derived silver rule. Its name, the quarantine reason it writes, is the value for
    the whole-line checks and `<field>_<value>` for the per-field ones."""

    # Whole-line checks, in the order silver tests them: the first that applies is the only
    # reason a line not read as a record gets.
    MALFORMED_JSON = "malformed_json"
    LINE_TOO_LONG = "line_too_long"
    TOO_DEEP = "too_deep"
    SCHEMA_DRIFT = "schema_drift"
    # Per-field checks.
    REQUIRED = "required"
    TYPE = "type"
    RANGE = "range"
    ENUM = "enum"
    FK = "fk"

    @property
    def kind(self) -> DefectKind:
        """The ledger kind of the lines this rule quarantines."""
        return _CAUGHT[self]

    @property
    def per_field(self) -> bool:
        return self in _PER_FIELD

    def rule_name(self, field: str | None = None) -> str:
        """The rule's name: `<field>_<check>` for a per-field check, else the check itself."""
        if not self.per_field:
            return self.value
        if field is None:
            raise ValueError(f"the {self.value} check is made per field; name the field")
        return f"{field}_{self.value}"


_CAUGHT: dict[SilverCheck, DefectKind] = {
    SilverCheck.MALFORMED_JSON: DefectKind.MALFORMED_JSON,
    SilverCheck.LINE_TOO_LONG: DefectKind.MALFORMED_JSON,
    SilverCheck.TOO_DEEP: DefectKind.MALFORMED_JSON,
    SilverCheck.SCHEMA_DRIFT: DefectKind.SCHEMA_DRIFT,
    SilverCheck.REQUIRED: DefectKind.NULL_REQUIRED,
    SilverCheck.TYPE: DefectKind.WRONG_TYPE,
    SilverCheck.RANGE: DefectKind.OUT_OF_RANGE,
    SilverCheck.ENUM: DefectKind.OUT_OF_RANGE,
    SilverCheck.FK: DefectKind.ORPHAN_FK,
}
_PER_FIELD = frozenset({SilverCheck.REQUIRED, SilverCheck.TYPE, SilverCheck.RANGE, SilverCheck.ENUM, SilverCheck.FK})
