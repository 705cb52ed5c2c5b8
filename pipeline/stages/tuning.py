"""Tuning: a search space from config, the trials it yields, and the best of their results."""

from __future__ import annotations

import itertools
import json
import math

STRATEGIES = ("grid", "random")


def parse_space(text: str) -> dict[str, list[str]]:
    """`learning_rate: 0.001, 0.003; batch_size: 32, 64` -> {name: [values as text]}.

    Values stay text: Luigi parses them as the trial task's parameters would be parsed on the
    command line, so a typo fails as a bad parameter, not as a silently wrong number.

    Raises:
        ValueError: an entry is not `name: value, value`.
    """
    space = {}
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        name, separator, values = entry.partition(":")
        choices = [value.strip() for value in values.split(",") if value.strip()]
        if not separator or not name.strip() or not choices:
            raise ValueError(f"[TuneModel] space: {entry!r} is not `parameter: value, value, ...`")
        space[name.strip().replace("-", "_")] = choices
    if not space:
        raise ValueError("[TuneModel] space is empty; e.g. space = learning_rate: 0.001, 0.003; batch_size: 32, 64")
    return space


def trials(space: dict[str, list[str]], *, strategy: str, count: int, seed: int) -> list[dict[str, str]]:
    """The parameter sets to train: every combination (grid, at most `count`), or `count` distinct
    combinations drawn at random with `seed`."""
    import numpy as np

    if strategy not in STRATEGIES:
        raise ValueError(f"[TuneModel] strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    names = list(space)
    combinations = [dict(zip(names, values)) for values in itertools.product(*(space[n] for n in names))]
    if strategy == "grid":
        return combinations[:count] if count > 0 else combinations
    picked = np.random.default_rng(seed).permutation(len(combinations))[: max(count, 1)]
    return [combinations[i] for i in sorted(picked)]


def best_trial(outcomes: list[dict]) -> dict | None:
    """The succeeded trial with the highest validation headline; ties go to the earlier trial."""
    scored = [o for o in outcomes if o.get("status") == "succeeded" and _finite(o.get("validation_headline"))]
    return max(scored, key=lambda o: o["validation_headline"], default=None)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def trial_key(params: dict[str, str]) -> str:
    return json.dumps(params, sort_keys=True)
