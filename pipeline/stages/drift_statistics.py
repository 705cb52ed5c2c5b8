"""Drift statistics: PSI, KS and Jensen-Shannon distance, and the scores sampling noise alone reaches.

Pure functions of counts, proportions and samples; `pipeline.stages.monitoring` decides what is compared
with what and builds the drift table from these.

- PSI (population stability index) compares two distributions over the same bins. An empty bin
  would make PSI infinite; a small floor (EPSILON) keeps a new bin a large but finite score, and
  `floors` raises it for the bins beyond the training range.
- KS is the statistic D (largest gap between the two CDFs), not the p-value: with thousands of
  rows a p-value is tiny for any shift at all, so it would alarm every night.
- Jensen-Shannon distance (base 2, in [0, 1]) compares category proportions.
- Wasserstein-1 (earth mover's) distance, in reference standard deviations, is the effect size
  of a numeric shift: a mean moved by 0.2 sd scores 0.2 at any night size, where PSI (~0.04) and
  KS (~0.08) stay far under their 0.2. Its noise floor falls as 1 / sqrt(rows), so a large night
  sees a small, certain shift and a small night stays quiet.
- One predicted class's share (`class_share_noise`): binomial quantiles of the share a night
  holds by chance, for a class PSI weighs too little to see vanish.

Why the thresholds depend on the sample sizes: small batches score high by chance alone (PSI >
0.2 on most 30-row samples of the training distribution itself). `psi_noise`, `ks_noise` and
`js_noise` give the score two samples of one distribution, of these sizes, stay under with a
given probability; each alert threshold is raised to it, so a nightly alert means a shift, not a
small night.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom, chi2, ks_2samp, norm, wasserstein_distance

# An empty bin would make PSI infinite; a small floor keeps a new bin a large but finite score.
EPSILON = 1e-4
NOT_RUN = "nothing to compare"  # the note of a NaN score whose check gave no reason of its own
# sqrt(n m / (n + m)) W1 / integral of sqrt(F (1 - F)) over two samples of one distribution has
# a 99.9% quantile of 2.0 to 2.9 (3,000 draws each of normal, uniform, exponential, lognormal,
# Student t(3) and 5-valued discrete samples, 30 to 20,000 rows against 2,000) and of 3.3 to 3.8
# for a two-valued column (there it is |z| of a difference of shares: 3.29, plus the share read
# off the reference sample). Random halves of scikit-learn's diabetes found that one: its `sex`.
WASSERSTEIN_NOISE_AT_999 = 4.0


def psi(actual, expected, floor=EPSILON, rows: int = 0) -> float:
    """Population stability index of two distributions over the same bins; NaN if one is empty.

    Args:
        actual, expected: counts or proportions per bin (each is normalised to sum to one).
        floor: the smallest share per bin, one number or one per bin, on both sides.
        rows: the batch's row count, when known: raises the floor to half a row.

    Returns:
        sum((actual - expected) * ln(actual / expected)), with shares floored so that a bin
        that appears or empties scores high instead of infinite.
    """
    actual, expected = (np.asarray(values, dtype="float64") for values in (actual, expected))
    if actual.sum() <= 0 or expected.sum() <= 0:
        return float("nan")
    if rows:
        # A small batch leaves bins empty by chance; half a row per bin (a continuity
        # correction) keeps each empty bin from adding ln(expected / floor) on its own.
        floor = np.maximum(floor, 0.5 / rows)
    actual = np.maximum(actual / actual.sum(), floor)
    expected = np.maximum(expected / expected.sum(), floor)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks(present: np.ndarray, reference_sample: np.ndarray) -> float:
    """KS statistic D against the reference sample; NaN when either side has no values."""
    if len(present) == 0 or len(reference_sample) == 0:
        return float("nan")
    return float(ks_2samp(present, reference_sample).statistic)


def floors(profile: dict) -> np.ndarray:
    """PSI floor per bin: EPSILON, but 1 / (n + 1) for the bins beyond the training range.

    No training value lies outside its own range, yet a fresh value from the same distribution
    falls below the minimum of n values with probability 1 / (n + 1), and above the maximum
    likewise. Shares that small, on either side, are noise: flooring both sides there keeps a
    small training split from alarming on a batch with a few (or no) values just outside it.
    """
    floors = np.full(len(profile["proportions"]), EPSILON)
    present = round(profile["rows"] * (1 - profile["missing_share"]))
    if present and len(floors) > 1:
        floors[0] = floors[-1] = max(EPSILON, 1.0 / (present + 1))
    return floors


def psi_noise(rows: int, reference_rows: int, bins: int, confidence: float) -> float:
    """The PSI two samples of one distribution stay under with probability `confidence`.

    PSI is asymptotically chi-square: PSI * (1/n + 1/N)^-1 ~ chi2(bins - 1) (Yurdakul, 2018).
    """
    if rows <= 0 or reference_rows <= 0 or bins < 2:
        return 0.0
    return float((1 / rows + 1 / reference_rows) * chi2.ppf(confidence, bins - 1))


def ks_noise(rows: int, reference_rows: int, confidence: float) -> float:
    """The two-sample KS statistic D that chance alone exceeds with probability 1 - confidence."""
    if rows <= 0 or reference_rows <= 0:
        return 0.0
    return float(
        np.sqrt(-np.log((1 - confidence) / 2) / 2) * np.sqrt((rows + reference_rows) / (rows * reference_rows))
    )


def js_noise(rows: int, reference_rows: int, bins: int, confidence: float) -> float:
    """The Jensen-Shannon distance (base 2) sampling noise stays under with probability `confidence`.

    For close distributions the JS divergence is about a chi-square statistic / (8 n), in nats.
    """
    if rows <= 0 or reference_rows <= 0 or bins < 2:
        return 0.0
    divergence = (1 / rows + 1 / reference_rows) * chi2.ppf(confidence, bins - 1) / (8 * np.log(2))
    return float(np.sqrt(divergence))


def wasserstein(present: np.ndarray, reference_sample: np.ndarray, scale: float) -> float:
    """W1 between the batch's values and the reference sample, in units of `scale` (the training
    standard deviation; a constant training column is measured in its own units); NaN if empty."""
    if len(present) == 0 or len(reference_sample) == 0:
        return float("nan")
    return float(wasserstein_distance(present, reference_sample) / (scale if scale > 0 else 1.0))


def wasserstein_noise(rows: int, reference_sample: np.ndarray, scale: float, confidence: float) -> float:
    """The W1 (in units of `scale`) that two samples of one distribution, of `rows` and of the
    reference sample's size, stay under with probability `confidence`.

    Under no shift sqrt(n m / (n + m)) W1 tends to the integral of |B(F(x))| for a Brownian
    bridge B; its spread is set by the integral of sqrt(F (1 - F)), read off the sorted
    reference sample, times WASSERSTEIN_NOISE_AT_999 (rescaled as a normal quantile for another
    confidence).
    """
    sample = np.sort(np.asarray(reference_sample, dtype="float64"))
    if rows <= 0 or len(sample) < 2:
        return 0.0
    shares = np.arange(1, len(sample)) / len(sample)
    spread = float(np.sum(np.sqrt(shares * (1 - shares)) * np.diff(sample))) / (scale if scale > 0 else 1.0)
    factor = WASSERSTEIN_NOISE_AT_999 * norm.ppf(confidence) / norm.ppf(0.999)
    return float(factor * spread * np.sqrt(1 / rows + 1 / len(sample)))


def class_share_noise(rows: int, reference_rows: int, share: float, confidence: float) -> tuple[float, float]:
    """(low, high): the shares of one class a night of `rows` predictions stays within by chance
    with probability `confidence` (half the rest below, half above), when `reference_rows`
    reference predictions held it at `share`.

    Binomial quantiles, not a normal approximation: a class of 4% on a night of 300 is about 12
    predictions, and the question is often whether 0 of them is chance. The reference is a sample
    too, so the night is drawn as if from 1 / (1/rows + 1/reference_rows) rows, the size whose
    variance matches the difference of the two shares (as `psi_noise` does). Both bounds are at
    least half a row of the night: a class absent tonight scores at that floor, so it is never
    past the low bound where chance alone could leave a class empty.
    """
    effective = max(1, int(1 / (1 / rows + 1 / reference_rows)))
    tail = (1 - confidence) / 2  # either way is an alert: a class that vanishes, or one that swells
    low = float(binom.ppf(tail, effective, share)) / effective
    high = float(binom.ppf(1 - tail, effective, share)) / effective
    floor = 0.5 / rows
    return max(low, floor), max(high, floor)


def score(method: str, score: float, threshold: float, rows: int, min_rows: int, why_not: str | None = None) -> tuple:
    """(method, score, threshold, alert, note) of one check.

    A NaN score (the check did not run) never alerts, NaN > threshold being False, so it must
    say why: its note is `why_not` where the check knows, NOT_RUN otherwise, and None for a
    score that was taken. A report that shows the note never passes a check that never ran off
    as "ok".
    """
    note = (why_not or NOT_RUN) if np.isnan(float(score)) else None
    return method, score, threshold, bool(score > threshold and rows >= min_rows), note
