"""Generator benchmarks, each a ratio against a baseline measured in the same run.

`run_benchmarks(quick)` (called by `medallion bench`) measures, on the driving scenario:

1. driving-event records per CPU-second on one core, on the `scaling` preset: the engine alone
   (everything up to the bytes in memory), and with the durable writer (files, sha256,
   manifests, fsync; wall-clock figures in the notes); goal >= 1,000,000;
2. the same per CPU-second against a row-by-row Faker + `json.dumps` generator of the same
   records (goal >= 100x);
3. bytes per second against copying the very same files on the same disk with the same fsync
   (goal >= 0.5: the disk is the limit);
4. a floor: the least any generator of the same records, landed the same way, must do (the
   declared random draws, every byte copied once, hashed, written and fsynced), per
   CPU-second; its ratio to Faker bounds row 2 on this machine, ours to it is what the
   formatting, defects and ledger cost (reported);
5. memory over many batches: peak traced memory on the first simulated day and on the last
   (goal: flat).

Every timed run that writes files starts on reused memory (`warm_memory`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
import tracemalloc
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from generators.engine import Batch, Engine
from generators.writer import LandingWriter, PipelinedWriter, WriteStats, start_writeback
from medallion.contracts.layout import DataRoot
from medallion.contracts.sampler_specs import CategoricalSample, NormalSample, UniformSample
from medallion.contracts.scenario import Entity
from medallion.contracts.scenario_loader import load_scenario

Result = dict[str, Any]
SEED = 7
WARM_MEGABYTES = 1024  # more than the files and buffers any one timed run allocates (10 batches: 214 MB of files)


@dataclass
class _Run:
    events: int
    lines: int
    bytes: int
    wall: float
    cpu: float
    files: list[Path]
    steady: float  # bytes per second from the first batch's commit to the last's (0 with one batch)


def _generate(root: Path, batches: int, profile: str | None = "scaling", warm_mb: int = 0) -> _Run:
    """Engine + durable writer for `batches` batches after a warm-up batch (and `warm_memory(warm_mb)`); timed."""
    scenario = load_scenario("driving", profile=profile)
    engine = Engine(scenario, SEED)
    writer = LandingWriter(DataRoot(root), scenario, SEED, durable=True)
    writer.open()
    writer.write(engine.generate())  # warm-up: baseline dimensions, first allocations
    before = set(root.rglob("*.jsonl"))
    totals = {"events": 0, "lines": 0, "bytes": 0}
    commits: list[tuple[float, int]] = []

    def written(batch: Batch, stats: WriteStats, _busy_seconds: float) -> None:
        totals["events"] += batch.entities["driver_events"].lines
        totals["lines"] += stats.lines
        totals["bytes"] += stats.bytes
        commits.append((time.perf_counter(), stats.bytes))

    # As `medallion generate` runs: the next batch is generated while the last one is written.
    warm_memory(warm_mb)
    wall, cpu = time.perf_counter(), time.process_time()
    pipeline = PipelinedWriter(writer, written)
    for _ in range(batches):
        began = time.perf_counter()
        batch = engine.generate()
        pipeline.submit(batch, time.perf_counter() - began)
    pipeline.close()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    writer.close()
    events, lines, size = totals["events"], totals["lines"], totals["bytes"]
    files = sorted(p for p in root.rglob("*.jsonl") if p not in before)
    # Once under way: without the first batch's generation (nothing to write yet) and the
    # last one's writing (nothing left to generate), as in a run that goes on for hours.
    steady = sum(b for _, b in commits[1:]) / (commits[-1][0] - commits[0][0]) if len(commits) > 1 else 0.0
    return _Run(events, lines, size, wall, cpu, files, steady)


def faker_baseline(path: Path, records: int, drivers: int = 20_000, warm_mb: int = 0) -> tuple[int, float, float]:
    """Row by row, the way a Faker user writes it: the same driver_events fields, values and
    formats, one dict and one `json.dumps` per record. Returns (records, wall seconds, CPU
    seconds), timed after importing Faker and a few untimed records: its one-time start-up
    (about 0.06 s, 6% of a 20,000-record run here) is not part of a generator's speed, as the
    engine's compilation is not either."""
    from faker import Faker

    fake = Faker()
    fake.seed_instance(SEED)
    driver_ids = [f"d-{i:07d}" for i in range(1, drivers + 1)]
    event_types = OrderedDict([("start_driving", 0.40), ("stopped_driving", 0.35), ("delivered", 0.25)])
    start = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
    end = start + timedelta(minutes=15)
    for _ in range(100):  # loads the providers each call below uses
        fake.date_time_between(start_date=start, end_date=end, tzinfo=UTC)
        fake.random_element(event_types)
        fake.pyfloat(min_value=52.30, max_value=52.45, right_digits=5)
    warm_memory(warm_mb)
    began, cpu = time.perf_counter(), time.process_time()
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(records):
            instant = fake.date_time_between(start_date=start, end_date=end, tzinfo=UTC)
            record = {
                "event_id": f"e-{i + 1:010d}",
                "driver_id": fake.random_element(driver_ids),
                "event_type": fake.random_element(event_types),
                "event_time": instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z",
                "speed_kmh": round(min(max(fake.random.gauss(52, 18), 0.0), 160.0), 1),
                "latitude": fake.pyfloat(min_value=52.30, max_value=52.45, right_digits=5),
                "longitude": fake.pyfloat(min_value=4.75, max_value=5.05, right_digits=5),
            }
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return records, time.perf_counter() - began, time.process_time() - cpu


def copy_baseline(files: list[Path], target: Path, warm_mb: int = 0) -> tuple[int, float]:
    """Copy files on the same disk, fsync each like the writer does (after `warm_memory(warm_mb)`).
    Returns (bytes, seconds)."""
    target.mkdir(parents=True, exist_ok=True)
    total = 0
    warm_memory(warm_mb)
    began = time.perf_counter()
    for source in files:
        destination = target / source.name
        shutil.copyfile(source, destination)
        with open(destination, "rb") as handle:
            os.fsync(handle.fileno())
        total += source.stat().st_size
    return total, time.perf_counter() - began


def warm_memory(megabytes: int) -> float:
    """Touch and free `megabytes` of memory; returns the CPU seconds that took.

    Called right before each timed run that writes files. This virtual machine hands memory
    freed for about 2 s back to its host, and the next touch of such a page costs 2.2 ms per MB
    of CPU (the host backs it again), against 0.07 ms for a page freed a moment ago (1 GB
    touched this way, then again after sleeps of 0 to 8 s). Every new page
    of the page cache pays that, so a run writing 200 MB of files took 0.4 s more CPU than the
    same run on reused pages: a price of the machine's memory, not of the generator, and it
    fell on whichever side of a ratio found cold pages. Pages freed here are handed out first,
    so the run that follows writes into memory that is already backed."""
    began = time.process_time()
    touched = np.ones(megabytes << 20, dtype=np.uint8)  # ones, not zeros: every page written
    del touched
    return time.process_time() - began


def _declared_draws(rng: np.random.Generator, entity: Entity, units: int, n: int, interval_ms: int) -> dict[str, np.ndarray]:
    """The random numbers `n` records of `entity` need at the least, drawn as it declares them:
    which unit each record belongs to (Poisson counts per unit), its instant (sorted) and every
    sampled field's values (sequences and fields copied from elsewhere need none)."""
    counts = rng.poisson(n / max(units, 1), units)
    drawn: dict[str, np.ndarray] = {
        "unit": np.repeat(np.arange(units), counts),
        "instant": np.sort(rng.integers(0, interval_ms, n)),
    }
    for name, spec in entity.fields.items():
        sample = spec.sample
        if isinstance(sample, NormalSample):
            drawn[name] = rng.normal(sample.mean, sample.std, n)
        elif isinstance(sample, UniformSample):
            drawn[name] = rng.uniform(sample.low, sample.high, n)
        elif isinstance(sample, CategoricalSample):
            p = np.asarray(list(sample.weights.values()), dtype=np.float64)
            drawn[name] = rng.choice(p.size, size=n, p=p / p.sum())
    return drawn


def floor_per_cpu(files: list[Path], events: int, batches: int, target: Path, warm_mb: int = 0, repeats: int = 3) -> float:
    """The least work any generator of the same driving events, landed as ours are, must do;
    returns events per CPU-second. It draws the random numbers the scenario declares for them
    (`_declared_draws`, one batch's worth at a time), puts each byte of the files `files` in
    memory once (one copy: formatting at no cost, no defects, no ledger) and hashes and writes
    them as the writer does (sha256, write, writeback, one fsync per file). Its ratio to the
    Faker baseline bounds the ratio any such generator can reach on this machine.

    A bound, so the best of `repeats` runs (one run varied by up to 1.6x on this shared
    machine, the first after a generator run most)."""
    scenario = load_scenario("driving", profile="scaling")
    entity = scenario.entities["driver_events"]
    spawn = scenario.entities["drivers"].spawn
    units = scenario.entities["companies"].baseline * (spawn.count if spawn else 1)  # the drivers at the start
    interval_ms = int(scenario.clock.interval.total_seconds() * 1000)
    contents = [path.read_bytes() for path in files]  # untimed: the bytes are given
    target.mkdir(parents=True, exist_ok=True)
    sizes = [events // batches + (batch < events % batches) for batch in range(batches)]
    best = math.inf
    warm_memory(warm_mb)
    for attempt in range(repeats):
        rng = np.random.default_rng(SEED)
        cpu = time.process_time()
        for size in sizes:
            _declared_draws(rng, entity, units, size, interval_ms)
        written = []
        for index, content in enumerate(contents):
            formatted = bytearray(content)
            digest = hashlib.sha256(formatted)
            path = target / f"f{index:05d}.jsonl"
            with open(path, "wb") as handle:
                handle.write(formatted)
                handle.flush()
                start_writeback(handle.fileno())
            written.append((path, digest.hexdigest()))
        for path, _ in written:
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        best = min(best, time.process_time() - cpu)
        if attempt < repeats - 1:
            for path, _ in written:  # their pages go back to the next run at once
                path.unlink()
    return events / best


def memory_over_batches(root: Path, days: int) -> tuple[float, float, float, float]:
    """Peak traced memory (MB) while writing the first simulated day and the last one, and the
    memory held between batches after each. The fleet is fixed (no new companies), so every
    day brings the same volume: anything that grows with the number of batches shows."""
    scenario = load_scenario("driving", overrides={"entities": {"companies": {"arrival": {"rate": 0.0}}}})
    per_day = int(86_400 // scenario.clock.interval.total_seconds())
    engine = Engine(scenario, SEED)
    writer = LandingWriter(DataRoot(root), scenario, SEED, durable=False)
    writer.open()
    tracemalloc.start()
    peaks: list[float] = []
    held: list[float] = []
    try:
        for _ in range(days):
            tracemalloc.reset_peak()
            for _ in range(per_day):
                writer.write(engine.generate())
            current, peak = tracemalloc.get_traced_memory()
            peaks.append(peak / 1e6)
            held.append(current / 1e6)
            # The landing files are not what is measured; keep the disk small (os.scandir, as
            # pathlib would intern every name and show up in the measurement).
            for folder in os.scandir(root / "landing"):
                for entry in os.scandir(folder.path):
                    os.unlink(entry.path)
    finally:
        tracemalloc.stop()
        writer.close()
    return peaks[0], peaks[-1], held[0], held[-1]


def encode_only(batches: int, profile: str | None = "scaling") -> tuple[int, float]:
    """Engine alone (sampling, defects, JSON lines and ledger in memory): (events, CPU seconds).

    Timed after an untimed pass over the same batches: one-time costs (machine code loaded for
    each shape of line a later batch brings, e.g. a drifted field, tables built once) are not
    part of a generator that runs for hours, and took about 5% of a single pass."""
    scenario = load_scenario("driving", profile=profile)
    _encode(Engine(scenario, SEED), batches + 1)
    engine = Engine(scenario, SEED)
    engine.generate()
    cpu = time.process_time()
    events = _encode(engine, batches)
    return events, time.process_time() - cpu


def _encode(engine: Engine, batches: int) -> int:
    """Generate batches and read every file's lines (they are assembled as they are read);
    returns the number of driving events."""
    events = 0
    for _ in range(batches):
        batch = engine.generate()
        for entity in batch.entities.values():
            for part in entity.parts:
                for _chunk in part.chunks:
                    pass
        events += batch.entities["driver_events"].lines
    return events


def run_benchmarks(quick: bool) -> list[Result]:
    """Measure the generator against its baselines in one run (see the module docstring)."""
    batches = 3 if quick else 10
    fakes = 20_000 if quick else 100_000
    memory_days = 2 if quick else 8
    # Each timed figure, ours and every baseline's alike, is the best of `repeats` runs: on
    # this shared machine one run of a row varied by up to a third from the next.
    repeats = 1 if quick else 3
    best = f"best of {repeats} runs, " if repeats > 1 else ""
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="medallion-bench-") as tmp:
        root = Path(tmp)
        encoded, encode_cpu = min((encode_only(batches) for _ in range(repeats)), key=lambda timed: timed[1])
        per_cpu_encode = encoded / encode_cpu
        results.append({
            "name": "generator: driving events per CPU-second, in memory (one core)",
            "value": round(per_cpu_encode),
            "unit": "records/s",
            "baseline": "goal 1,000,000 records/s",
            "ratio": round(per_cpu_encode / 1_000_000, 3),
            "goal": ">= 1.0",
            "ok": per_cpu_encode >= 1_000_000,
            "notes": f"{best}{encoded:,} events in {batches} scaling batches: sampling, defects, JSON lines, ledger",
        })
        runs: list[_Run] = []
        for attempt in range(repeats):
            if runs:  # the same bytes every time (one seed): keep one run's files, free the others' pages
                shutil.rmtree(root / f"gen{attempt - 1}")
            runs.append(_generate(root / f"gen{attempt}", batches, warm_mb=WARM_MEGABYTES))
        run = runs[-1]
        per_cpu = max(r.events / r.cpu for r in runs)
        per_wall = max(r.events / r.wall for r in runs)
        ours = max(r.bytes / r.wall for r in runs)
        steady = max(r.steady for r in runs)
        results.append({
            "name": "generator: driving events per CPU-second, written durably (one core)",
            "value": round(per_cpu),
            "unit": "records/s",
            "baseline": "goal 1,000,000 records/s",
            "ratio": round(per_cpu / 1_000_000, 3),
            "goal": ">= 1.0",
            "ok": per_cpu >= 1_000_000,
            "notes": f"{best}{run.events:,} events, {run.lines:,} lines in {batches} scaling batches with sha256, "
                     f"manifests and fsync (CPU of both threads); wall clock {per_wall:,.0f} records/s "
                     f"({ours / 1e6:,.0f} MB/s); on reused memory (`warm_memory`), as every timed run that writes files",
        })
        fakers = [faker_baseline(root / "faker.jsonl", fakes, warm_mb=WARM_MEGABYTES) for _ in range(repeats)]
        records = fakers[0][0]
        seconds, faker_cpu = min(timed[1] for timed in fakers), min(timed[2] for timed in fakers)
        faker_rate = records / faker_cpu
        ratio = per_cpu / faker_rate
        results.append({
            "name": "generator vs row-by-row Faker + json.dumps (per core)",
            "value": round(per_cpu),
            "unit": "records/s",
            "baseline": f"Faker + json.dumps: {faker_rate:,.0f} records/s",
            "ratio": round(ratio, 1),
            "goal": ">= 100",
            "ok": ratio >= 100,
            "notes": f"{best}same driving_events fields and formats, {records:,} Faker records, both written to disk; "
                     f"per CPU-second on both sides (wall clock: {per_wall:,.0f} vs {records / seconds:,.0f} records/s)",
        })
        copies: list[tuple[int, float]] = []
        for attempt in range(repeats):
            if copies:
                shutil.rmtree(root / f"copy{attempt - 1}")
            copies.append(copy_baseline(run.files, root / f"copy{attempt}", WARM_MEGABYTES))
        copied, copy_seconds = copies[0][0], min(timed[1] for timed in copies)
        copy_rate = copied / copy_seconds
        results.append({
            "name": "generator vs copying the same bytes on the same disk",
            "value": round(ours / 1e6, 1),
            "unit": "MB/s",
            "baseline": f"copy + fsync: {copy_rate / 1e6:,.1f} MB/s",
            "ratio": round(ours / copy_rate, 3),
            "goal": ">= 0.5",
            "ok": ours / copy_rate >= 0.5,
            "notes": f"{best}{len(run.files)} files, {copied / 1e6:,.0f} MB, both fsync every file; wall clock on both "
                     f"sides; once under way (first commit to last) {steady / 1e6:,.1f} MB/s, ratio {steady / copy_rate:.3f}",
        })
        floor = floor_per_cpu(run.files, run.events, batches, root / "floor", WARM_MEGABYTES)
        results.append({
            "name": "generator floor (the same draws, bytes hashed and written) vs Faker",
            "value": round(floor),
            "unit": "records/s",
            "baseline": f"Faker + json.dumps: {faker_rate:,.0f} records/s",
            "ratio": round(floor / faker_rate, 1),
            "goal": "reported (the most any generator writing these records can reach)",
            "ok": True,
            "notes": f"best of 3 runs, {run.events:,} events: the random numbers the scenario declares for them, "
                     "each landed byte put in memory once (formatting free, no defects, no ledger), sha256, write "
                     "and fsync as ours; per CPU-second, one thread",
        })
        results.append({
            "name": "generator vs its floor (per core)",
            "value": round(per_cpu),
            "unit": "records/s",
            "baseline": f"floor: {floor:,.0f} records/s",
            "ratio": round(per_cpu / floor, 3),
            "goal": "reported (1.0 = only the irreducible work)",
            "ok": True,
            "notes": f"in memory: {per_cpu_encode:,.0f} records/s (the engine alone), written durably: {per_cpu:,.0f}",
        })
        # Same weekday first and last (2 days: Monday, Tuesday; 8: Monday and Monday): the
        # day-of-week multipliers then give both the same volume.
        first_peak, last_peak, first_held, last_held = memory_over_batches(root / "memory", memory_days)
        growth = last_peak / first_peak
        results.append({
            "name": "generator memory over many batches",
            "value": round(last_peak, 2),
            "unit": "MB peak (traced)",
            "baseline": f"first day: {first_peak:.2f} MB peak",
            "ratio": round(growth, 3),
            "goal": "<= 1.1 (flat)",
            "ok": growth <= 1.1,
            "notes": f"{memory_days} simulated days ({memory_days * 96} batches), fixed fleet; held between "
                     f"batches {first_held:.2f} -> {last_held:.2f} MB",
        })
    return results
