"""Generator-side checks of a scenario, beyond what the pydantic models can see alone.

Run before anything is written: a sampler that cannot fill its field's type, a defect rate
with no field to act on, a unit entity that does not exist as a dimension ... each problem is
reported with its dotted path, the bad value and what to write instead.
"""

from __future__ import annotations

from generators import vocab
from medallion.contracts.defects import ADDED_FIELD, DefectKind
from medallion.contracts.errors import ConfigError
from medallion.contracts.sampler_specs import (
    BooleanSample,
    CategoricalSample,
    ConstantSample,
    DegradationSample,
    DerivedSample,
    EmailSample,
    IntervalTimeSample,
    LognormalSample,
    NormalSample,
    ParentSample,
    PoissonSample,
    PricedSample,
    ProductSample,
    ReferenceSample,
    RemainingLifeSample,
    SequenceSample,
    ShapedSample,
    UniformSample,
    UnitSample,
    UpstreamSample,
    UuidSample,
    VocabularySample,
)
from medallion.contracts.scenario import Entity, Scenario
from medallion.contracts.scenario_base import bounded_problems, short

NUMERIC = ("int", "long", "double")
_FITS: dict[type, tuple[str, ...]] = {
    SequenceSample: ("string", "int", "long"),
    UuidSample: ("string",),
    UniformSample: NUMERIC,
    NormalSample: NUMERIC,
    LognormalSample: NUMERIC,
    PoissonSample: NUMERIC,
    DerivedSample: NUMERIC,
    ProductSample: NUMERIC,
    EmailSample: ("string",),
    ShapedSample: NUMERIC,
    DegradationSample: NUMERIC,
    RemainingLifeSample: NUMERIC,
    PricedSample: NUMERIC,
    CategoricalSample: ("string",),
    VocabularySample: ("string",),
    BooleanSample: ("boolean",),
    IntervalTimeSample: ("timestamp", "date"),
}
_RETYPES = {
    "int": ("string",),
    "long": ("string",),
    "double": ("string",),
    "boolean": ("string",),
    "timestamp": ("number",),
    "date": ("number",),
    "string": ("number", "boolean"),
}


def field_order(entity: Entity) -> list[str]:
    """Fields in sampling order: a derived or shaped field after the fields it reads."""
    depends: dict[str, set[str]] = {}
    for name, spec in entity.fields.items():
        sample = spec.sample
        needs: set[str] = set()
        if isinstance(sample, DerivedSample):
            needs.add(sample.source)
        if isinstance(sample, ShapedSample) and sample.by:
            needs.add(sample.by)
        if isinstance(sample, PricedSample):
            needs.update(sample.prices)
            if sample.times:
                needs.add(sample.times)
        if isinstance(sample, UpstreamSample):
            needs.add(sample.of)

        if isinstance(sample, ProductSample):
            needs.update(sample.factors)
        if isinstance(sample, EmailSample):
            needs.add(sample.source)
        depends[name] = needs & set(entity.fields)
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ConfigError("scenario", [f"fields {short(str(sorted(visiting)), 200)} depend on each other in a cycle"])
        visiting.add(name)
        for need in sorted(depends[name]):
            visit(need)
        visiting.discard(name)
        order.append(name)

    for name in entity.fields:
        visit(name)
    return order


def check_scenario(scenario: Scenario) -> None:
    """Raise ConfigError listing every problem the generator would hit with this scenario."""
    problems: list[str] = []
    for name, entity in scenario.entities.items():
        problems += _check_entity(scenario, name, entity)
    if problems:
        raise ConfigError(f"scenario {scenario.name!r}", bounded_problems(problems))


def _check_entity(scenario: Scenario, name: str, entity: Entity) -> list[str]:
    problems: list[str] = []
    where = f"entities.{name}"
    entities = scenario.entities
    key_spec = entity.fields[entity.key]
    if not isinstance(key_spec.sample, (SequenceSample, UuidSample)):
        problems.append(
            f"{where}.fields.{entity.key}.sample: the key needs unique values; use "
            "{kind: sequence, prefix: ...} or {kind: uuid}"
        )
    if key_spec.null_share:
        problems.append(f"{where}.fields.{entity.key}.null_share: a key is never null; remove it")
    arrival = entity.arrival
    per = arrival.per if arrival else None
    if per is not None and entities[per].role != "dimension":
        problems.append(f"{where}.arrival.per: {per!r} is a fact; units must be a dimension entity")
    if per is not None and entity.baseline:
        problems.append(f"{where}.baseline: rows of an entity with arrival.per belong to a unit; drop baseline")
    if entity.spawn is not None:
        parent = entity.spawn.parent
        if entity.role == "dimension" and entities[parent].role != "dimension":
            problems.append(f"{where}.spawn.parent: a dimension can only spawn from a dimension, not {parent!r}")
        if arrival is not None or entity.baseline:
            problems.append(f"{where}.spawn: rows are either spawned with a parent or arrive on their own; drop arrival/baseline")
    if arrival is not None and arrival.lifetime is not None and per is not None:
        life = arrival.lifetime
        unit_fields = entities[per].fields
        for label, field_name, types in (
            ("start", life.start, ("timestamp",)),
            ("life_hours", life.life_hours, NUMERIC),
            ("wear", life.wear, NUMERIC),
        ):
            if field_name is None:
                continue
            spec = unit_fields.get(field_name)
            if spec is None or spec.type not in types:
                problems.append(
                    f"{where}.arrival.lifetime.{label}: {field_name!r} must be a {'/'.join(types)} field of {per}"
                )
    for field_name, spec in entity.fields.items():
        path = f"{where}.fields.{field_name}"
        sample = spec.sample
        if sample is None:
            if spec.required:
                problems.append(f"{path}.sample: a required field needs a sampler, e.g. {{kind: uniform, low: 0, high: 1}}")
            continue
        fits = _FITS.get(type(sample))
        if fits is not None and spec.type not in fits:
            problems.append(f"{path}.sample: kind {sample.kind!r} cannot fill a {spec.type} field; it fills {list(fits)}")
        if isinstance(sample, ConstantSample):
            value = sample.value
            ok = (
                (spec.type == "string" and isinstance(value, str))
                or (spec.type == "boolean" and isinstance(value, bool))
                or (spec.type in NUMERIC and isinstance(value, (int, float)) and not isinstance(value, bool))
            )
            if not ok:
                problems.append(f"{path}.sample.value: {value!r} is not a {spec.type}")
        if isinstance(sample, (CategoricalSample, VocabularySample)) and spec.enum is not None:
            try:
                words = list(sample.weights) if isinstance(sample, CategoricalSample) else list(vocab.load(sample.vocabulary))
            except ConfigError as exc:
                problems += [f"{path}.sample: {p}" for p in exc.problems]
                words = []
            outside = sorted(set(words) - set(spec.enum))[:5]
            if outside:
                problems.append(f"{path}.enum: sampled values {outside} are not in the enum; add them or change the sampler")
        if isinstance(sample, VocabularySample):
            try:
                vocab.load(sample.vocabulary)
            except ConfigError as exc:
                problems += [f"{path}.sample.vocabulary: {p}" for p in exc.problems]
        if isinstance(sample, ReferenceSample):
            target = spec.references
            if target is None:
                problems.append(f"{path}: sampler 'reference' needs `references: ENTITY`")
            elif entities[target].role != "dimension":
                problems.append(f"{path}.references: {target!r} is a fact; references point at dimensions")
        if spec.references is not None and not isinstance(sample, (ReferenceSample, UnitSample, ParentSample, UpstreamSample)):
            problems.append(f"{path}.sample: a reference field takes kind reference, unit, parent or upstream")
        if isinstance(sample, UpstreamSample):
            of = entity.fields.get(sample.of)
            if spec.references is None:
                problems.append(f"{path}: sampler 'upstream' needs `references: ENTITY`")
            elif of is None or of.references != spec.references or not isinstance(of.sample, ReferenceSample):
                problems.append(
                    f"{path}.sample.of: {sample.of!r} must be another field of {name} with kind reference "
                    f"and references: {spec.references}"
                )
        if isinstance(sample, PricedSample):
            for price_field in sample.prices:
                by_spec = entity.fields.get(price_field)
                if by_spec is None or not isinstance(by_spec.sample, (CategoricalSample, VocabularySample, UnitSample, ParentSample)):
                    problems.append(f"{path}.sample.prices: {price_field!r} must be a categorical or vocabulary field of {name}")
            if sample.times is not None:
                times_spec = entity.fields.get(sample.times)
                if times_spec is None or times_spec.type not in NUMERIC or sample.times == field_name:
                    problems.append(f"{path}.sample.times: {sample.times!r} must be another numeric field of {name}")
        if isinstance(sample, UnitSample):
            if per is None:
                problems.append(f"{path}.sample: kind 'unit' needs arrival.per on {name}")
            elif sample.field is not None and sample.field not in entities[per].fields:
                problems.append(f"{path}.sample.field: {per} has no field {sample.field!r}")
            elif spec.references is not None and sample.field is None and spec.references != per:
                problems.append(f"{path}.references: the unit is a row of {per!r}, not {spec.references!r}")
        if isinstance(sample, ParentSample):
            if entity.spawn is None:
                problems.append(f"{path}.sample: kind 'parent' needs spawn on {name}")
            elif sample.field is not None and sample.field not in entities[entity.spawn.parent].fields:
                problems.append(f"{path}.sample.field: {entity.spawn.parent} has no field {sample.field!r}")
        if isinstance(sample, DerivedSample):
            source = entity.fields.get(sample.source)
            if source is None or source.type not in NUMERIC or sample.source == field_name:
                problems.append(f"{path}.sample.source: {sample.source!r} must be another numeric field of {name}")
        if isinstance(sample, ProductSample):
            for factor in sample.factors:
                spec_f = entity.fields.get(factor)
                if spec_f is None or spec_f.type not in NUMERIC or factor == field_name:
                    problems.append(f"{path}.sample.factors: {factor!r} must be another numeric field of {name}")
        if isinstance(sample, EmailSample):
            source_spec = entity.fields.get(sample.source)
            if source_spec is None or source_spec.type != "string" or sample.source == field_name:
                problems.append(f"{path}.sample.source: {sample.source!r} must be another string field of {name}")
        if isinstance(sample, ShapedSample) and sample.by is not None:
            by = entity.fields.get(sample.by)
            if by is None or by.type != "string":
                problems.append(f"{path}.sample.by: {sample.by!r} must be a string field of {name}")
        if isinstance(sample, (DegradationSample, RemainingLifeSample)) and (arrival is None or arrival.lifetime is None):
            problems.append(f"{path}.sample: kind {sample.kind!r} needs arrival.lifetime on {name}")
    problems += _check_defects(scenario, name, entity)
    return problems


def _check_defects(scenario: Scenario, name: str, entity: Entity) -> list[str]:
    problems: list[str] = []
    where = f"entities.{name}.defects"
    defects = entity.defects
    added = {d.field for d in defects.drift if d.change == ADDED_FIELD and d.field in entity.fields}
    usable = [f for f in entity.fields if f != entity.key and f not in added]
    needs = {
        DefectKind.NULL_REQUIRED: ([f for f in usable if entity.fields[f].required], "a required non-key field"),
        DefectKind.WRONG_TYPE: (usable, "a non-key field"),
        DefectKind.OUT_OF_RANGE: (
            [f for f in usable if entity.fields[f].range is not None or entity.fields[f].enum is not None],
            "a field with a range or an enum",
        ),
        DefectKind.ORPHAN_FK: ([f for f in usable if entity.fields[f].references is not None], "a field with references"),
        DefectKind.LATE: ([entity.event_time] if entity.event_time else [], "an event_time"),
        DefectKind.OUT_OF_ORDER: ([entity.event_time] if entity.event_time else [], "an event_time"),
    }
    for kind, (fields, what) in needs.items():
        if defects.rate(kind) > 0 and not fields:
            problems.append(f"{where}.{kind}: {name} has no {what} to carry it; set it to 0")
    if defects.out_of_order > 0 and scenario.watermark_delay.total_seconds() <= 0:
        problems.append(f"{where}.{DefectKind.OUT_OF_ORDER}: needs a positive watermark_delay (out of order = within it)")
    first = next(iter(entity.fields))
    undeclared_adds = [d for d in defects.drift if d.change == ADDED_FIELD and d.field not in entity.fields]
    for i, spec in enumerate(defects.drift):
        path = f"{where}.drift[{i}]"
        if spec.field == entity.key:
            problems.append(f"{path}.field: the key {entity.key!r} never drifts (the ledger needs it); pick another field")
            continue
        declared = entity.fields.get(spec.field)
        if spec.change in ("rename", "retype") and declared is None:
            problems.append(f"{path}.field: {name} has no field {spec.field!r}")
            continue
        if spec.change in ("rename", "retype") and spec.field in added:
            problems.append(f"{path}.field: {spec.field!r} is also added by a drift; drift it in one way")
        if spec.change == "rename" and spec.to in entity.fields:
            problems.append(f"{path}.to: {spec.to!r} is already a field of {name}; pick a new name")
        if spec.change == "retype" and declared is not None and spec.to not in _RETYPES[declared.type]:
            problems.append(
                f"{path}.to: a {declared.type} field can drift to {list(_RETYPES[declared.type])} "
                f"(a type it still converts from), not {spec.to!r}"
            )
        if spec.change == ADDED_FIELD and declared is not None:
            if spec.type != declared.type:
                problems.append(f"{path}.type: {spec.field!r} is declared as {declared.type}, not {spec.type}")
            if spec.field == first:
                problems.append(f"{path}.field: the first field is always present; add a later one")
            if declared.required:
                problems.append(f"{path}.field: {spec.field!r} is required, so it cannot be missing before the drift")
    if undeclared_adds and added:
        problems.append(
            f"{where}.drift: an undeclared added field next to a declared one that is sometimes absent "
            "looks like a rename to silver; declare every added field under fields"
        )
    return problems
