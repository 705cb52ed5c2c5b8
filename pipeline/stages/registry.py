"""Registry stage: the registration gate, a decision from scores alone.

A candidate becomes production only if its headline score on its own test split beats the
production model's headline on the same rows, by the candidate's headline definition, by `margin`;
the first model is promoted. With
`require_beats_baseline`, a candidate that does not beat its best baseline is never promoted. Scoring
the production model and changing the registry are the caller's (tasks/registry.py, with
pipeline/store/registry.py); this function only decides, so every branch is tested without a
model or a database.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from pipeline.common.metrics import BASELINE_DIAGNOSES


@dataclass(frozen=True)
class GateDecision:
    promoted: bool  # the candidate is production after this decision
    reason: str
    production: str  # the production model's version after this decision
    production_headline: float | None = None  # the incumbent's score on the candidate's test split

    def as_dict(self) -> dict:
        document = asdict(self)
        if self.production_headline is None:
            del document["production_headline"]
        return document


def decide(
    version: str,
    headline: float,
    *,
    production: str | None,
    production_headline: float | None = None,
    scoring_error: str | None = None,
    margin: float,
    baseline_refusal: str = "",
    headline_name: str = "",
) -> GateDecision:
    """Whether model `version`, with test headline `headline`, should be production now.

    Args:
        production: the production model's version; None before the first promotion.
        production_headline: the production model's headline on the candidate's test split.
        scoring_error: why the production model could not be scored there (other columns),
            instead of production_headline.
        margin: headline points the candidate must win by.
        baseline_refusal: why the candidate may not be promoted at all under
            `[RegisterModel] require_beats_baseline` (see `baseline_refusal`); "" when it may.
        headline_name: the definition both headlines were scored by (e.g. "roc_auc"), named in
            the reason; "" names none.
    """
    if baseline_refusal and production != version:
        return GateDecision(
            False, f"stays a candidate: {baseline_refusal} ([RegisterModel] require_beats_baseline)", production or ""
        )
    if production is None:
        return GateDecision(True, "the first model is promoted", version)
    if production == version:
        return GateDecision(True, "already the production model", version)
    if production_headline is None:
        why = scoring_error or "the production model could not be scored on this test split"
        return GateDecision(False, f"stays a candidate: {why}; promote it by hand if it should serve", production)
    named = f" ({headline_name})" if headline_name else ""
    verdict = (
        f"headline{named} {headline:.4f} vs production {production} {production_headline:.4f} "
        f"on the same test split (margin {margin})"
    )
    if headline > production_headline + margin:
        return GateDecision(True, f"gate passed: {verdict}", version, production_headline)
    return GateDecision(False, f"stays a candidate: {verdict}", production, production_headline)


def baseline_refusal(headline: float, baselines: dict[str, dict], diagnosis: dict) -> str:
    """Why an evaluated model does not beat its baselines, or "" when it does.

    Args:
        baselines: metrics.json's "baselines" (name -> test figures with "headline").
        diagnosis: metrics.json's "diagnosis": a verdict from the baselines refuses too.
    """
    if not baselines:
        return "its evaluation scored no baselines ([EvaluateModel] baseline_rows = 0)"
    if not math.isfinite(headline):
        return f"its test headline is {headline}, no number to compare"
    finite = {name: found["headline"] for name, found in baselines.items() if math.isfinite(found["headline"])}
    best = max(finite, key=finite.get) if finite else None
    if best is not None and headline <= finite[best]:
        return f"headline {headline:.4f} does not beat the {best} baseline's {finite[best]:.4f} on the same test rows"
    if diagnosis.get("diagnosis") in BASELINE_DIAGNOSES:
        return f"its diagnosis is {diagnosis['diagnosis']}: {diagnosis.get('reason', '')}"
    return ""
