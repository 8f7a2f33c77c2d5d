"""Seeds as replicates: intervals of a configuration's test error, and a recommendation that holds with confidence.

Why: one training run per point on a test set of a few hundred images decides nothing; the
run-to-run spread is larger than the differences between formats.  Runs that differ only in
their seed are replicates of one configuration.  Errors are in percent throughout.

- Several seeds: the mean test error with a Student-t interval over the seeds.
- One seed: the Wilson score interval of the error count on the test set (the only spread
  one run shows is the sampling of the test set), and the report says so.
- The recommendation compares a configuration with the fp32 baseline *paired by seed* (the
  same seed gives the same initialization and data order): the one-sided upper confidence
  bound of the mean paired difference must be within the budget.  With one seed per side, the
  difference of two proportions gets Newcombe's hybrid score interval (Newcombe 1998,
  "Interval estimation for the difference between independent proportions", Statistics in
  Medicine 17: 873-890, method 10), built from the two Wilson intervals.
"""

from __future__ import annotations

import dataclasses
import math

from scipy import stats as _st

CONFIDENCE = 0.95
T_OVER_SEEDS = "Student t over seeds"
WILSON = "Wilson score interval of the test-set error count (one seed)"


@dataclasses.dataclass(frozen=True)
class Interval:
    """A mean test error (%) with its interval and how it was made."""

    n: int
    mean: float
    std: float | None  # over seeds (None with one seed)
    lo: float
    hi: float
    method: str


def wilson(errors_pct: float, n_test: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Two-sided Wilson score interval (percent) of an error rate measured on ``n_test`` images."""
    if n_test < 1:
        raise ValueError(f"bad test-set size {n_test}: accepted >= 1")
    p = errors_pct / 100.0
    z = _st.norm.ppf(0.5 + confidence / 2)
    den = 1 + z * z / n_test
    centre = (p + z * z / (2 * n_test)) / den
    half = z * math.sqrt(p * (1 - p) / n_test + z * z / (4 * n_test * n_test)) / den
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)


def interval(errors_pct: list[float], n_test: int | None = None, confidence: float = CONFIDENCE) -> Interval:
    """The mean error of the runs of one configuration with its two-sided interval."""
    xs = [float(x) for x in errors_pct]
    if not xs:
        raise ValueError("no runs: an interval needs at least one test error")
    n, mean = len(xs), sum(xs) / len(xs)
    if n == 1:
        if n_test is None:
            return Interval(1, mean, None, math.nan, math.nan, "one seed, test-set size unknown")
        lo, hi = wilson(mean, n_test, confidence)
        return Interval(1, mean, None, lo, hi, WILSON)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = _st.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return Interval(n, mean, sd, mean - half, mean + half, T_OVER_SEEDS)


@dataclasses.dataclass(frozen=True)
class Difference:
    """A configuration minus the baseline (percentage points), paired by seed."""

    n: int  # seeds both have
    mean: float
    upper: float  # one-sided upper confidence bound of the mean difference
    method: str


def paired_difference(cand: dict[int, float], base: dict[int, float], n_test: int | None = None,
                      confidence: float = CONFIDENCE) -> Difference | None:
    """Errors by seed of a candidate and the baseline -> their mean paired difference and its upper bound.

    Only seeds both have are paired (a failed run drops its pair, never the configuration).
    None when no seed is shared, or one is shared and the test-set size is unknown.
    """
    seeds = sorted(set(cand) & set(base))
    if not seeds:
        return None
    d = [cand[s] - base[s] for s in seeds]
    n, mean = len(d), sum(d) / len(d)
    if n >= 2:
        sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
        return Difference(n, mean, mean + _st.t.ppf(confidence, n - 1) * sd / math.sqrt(n),
                          f"paired t over {n} seeds")
    if n_test is None:
        return None
    # one-sided bound at `confidence` = upper end of the two-sided interval at 2*confidence - 1
    c2 = 2 * confidence - 1
    p1, p2 = cand[seeds[0]], base[seeds[0]]
    l1, u1 = wilson(p1, n_test, c2)
    l2, u2 = wilson(p2, n_test, c2)
    return Difference(1, mean, mean + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
                      "one seed: Newcombe's hybrid score interval")


def seeds_needed(diff: list[float], budget: float, confidence: float = CONFIDENCE, most: int = 200) -> int | None:
    """How many paired seeds would put the upper bound within ``budget`` if the mean and spread stay as seen.

    None when the mean difference itself exceeds the budget (no number of seeds decides it in
    favour) or the spread is unknown (fewer than two seeds).
    """
    if len(diff) < 2:
        return None
    n0, mean = len(diff), sum(diff) / len(diff)
    if mean >= budget:
        return None
    sd = math.sqrt(sum((x - mean) ** 2 for x in diff) / (n0 - 1))
    for n in range(max(2, n0), most + 1):
        if mean + _st.t.ppf(confidence, n - 1) * sd / math.sqrt(n) <= budget:
            return n
    return None
