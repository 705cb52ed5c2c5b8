"""The parameters the tasks of a night share, declared once: `date` and `model_version`.

Plain mixins, not luigi.Task subclasses: Luigi finds a task's parameters on every class of its
MRO, while a Task subclass would be registered as a task family of its own (one more name on the
command line, one more section in the configuration reference). Luigi's `inherits` does not fit
either: it copies the parameters onto each class, and the downstream tasks must be given the
resolved model (ModelVersionMixin.model), not the empty `model_version` they were given.
"""

from __future__ import annotations

import luigi


class NightParameters:
    """A task of one night: `date`."""

    date = luigi.DateParameter(
        description="the night, as YYYY-MM-DD: its files are read from `<data_root>/incoming/<date>/` and its "
        "late labels from `<data_root>/feedback/<date>/`"
    )


class NightModelParameters(NightParameters):
    """A night scored by one model: `date` and `model_version`."""

    model_version = luigi.Parameter(
        default="",
        description="the registered model that scores the night (a version `overnight models` lists); "
        "empty: the production model when the night is scheduled",
    )
