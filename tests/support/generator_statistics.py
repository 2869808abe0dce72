"""Statistics for the generator tests, numpy and math only (no scipy).

`chi2_sf` is the exact upper tail of the chi-square distribution via the regularised incomplete
gamma function (series below a+1, Lentz's continued fraction above, as in Numerical Recipes).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


def _gamma_q(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a), the regularised upper incomplete gamma."""
    if x <= 0:
        return 1.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        n = a
        for _ in range(10_000):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(log_front) * h


def chi2_sf(statistic: float, dof: int) -> float:
    """P(X >= statistic) for X ~ chi-square(dof)."""
    return _gamma_q(dof / 2, statistic / 2)


def poisson_pmf(k: np.ndarray, lam: float) -> np.ndarray:
    """P(K = k) for K ~ Poisson(lam)."""
    k = np.asarray(k, dtype=np.float64)
    return np.exp(k * math.log(lam) - lam - np.array([math.lgamma(v + 1) for v in k]))


def chi2_goodness(observed: np.ndarray, expected: np.ndarray) -> tuple[float, int]:
    """Pearson statistic and degrees of freedom, merging tail bins until each expects >= 5."""
    observed, expected = list(map(float, observed)), list(map(float, expected))
    while len(expected) > 2 and expected[-1] < 5:
        tail_expected, tail_observed = expected.pop(), observed.pop()
        expected[-1] += tail_expected
        observed[-1] += tail_observed
    while len(expected) > 2 and expected[0] < 5:
        head_expected, head_observed = expected.pop(0), observed.pop(0)
        expected[0] += head_expected
        observed[0] += head_observed
    o, e = np.array(observed), np.array(expected)
    return float(((o - e) ** 2 / e).sum()), len(e) - 1


@dataclass
class PoissonReport:
    """Per driver per interval: counts against Poisson(lambda(t)), pooled over batches."""

    intervals: int
    drivers: int
    mean_ratio: float  # observed mean / lambda, over all driver-intervals
    dispersion: float  # pooled variance / mean: 1 for Poisson
    dispersion_p: float  # two-sided, from sum (n - 1) var/mean ~ chi2(sum(n - 1))
    fit_statistic: float
    fit_dof: int
    fit_p: float  # chi-square goodness of fit of the count histogram to the Poisson pmf


def poisson_report(counts_by_batch: list[tuple[float, np.ndarray]]) -> PoissonReport:
    """`counts_by_batch`: (lambda, counts per driver) for each batch."""
    dispersion_stat = 0.0
    dispersion_dof = 0
    fit_stat = 0.0
    fit_dof = 0
    observed_total = expected_total = 0.0
    variance_sum = mean_sum = 0.0
    for lam, counts in counts_by_batch:
        n = counts.size
        mean = counts.mean()
        variance = counts.var(ddof=1)
        dispersion_stat += (n - 1) * variance / lam  # lambda known: var/lambda ~ chi2(n-1)/(n-1)
        dispersion_dof += n - 1
        variance_sum += variance
        mean_sum += mean
        top = int(counts.max()) + 1
        histogram = np.bincount(counts, minlength=top + 1).astype(float)
        expected = n * poisson_pmf(np.arange(top + 1), lam)
        expected[-1] += n - expected.sum()  # the tail beyond the largest count
        stat, dof = chi2_goodness(histogram, expected)
        fit_stat += stat
        fit_dof += dof
        observed_total += counts.sum()
        expected_total += lam * n
    upper = chi2_sf(dispersion_stat, dispersion_dof)
    return PoissonReport(
        intervals=len(counts_by_batch),
        drivers=int(np.mean([c.size for _, c in counts_by_batch])),
        mean_ratio=observed_total / expected_total,
        dispersion=variance_sum / mean_sum,
        dispersion_p=2 * min(upper, 1 - upper),
        fit_statistic=fit_stat,
        fit_dof=fit_dof,
        fit_p=chi2_sf(fit_stat, fit_dof),
    )


def read_lines(data: Path, entity: str) -> list[dict[str, Any]]:
    """Every line of an entity, parsed (the statistical runs have defects off)."""
    import json

    rows = []
    for path in sorted((data / "landing" / entity).glob("*.jsonl")):
        rows.extend(json.loads(line) for line in path.read_bytes().split(b"\n")[:-1])
    return rows


def per_driver_interval(data: Path) -> dict[str, Counter[str]]:
    """batch interval start -> driver -> events."""
    result: dict[str, Counter[str]] = defaultdict(Counter)
    for row in read_lines(data, "driver_events"):
        result[row["event_time"][:13] + ":" + f"{int(row['event_time'][14:16]) // 15 * 15:02d}"][row["driver_id"]] += 1
    return result
