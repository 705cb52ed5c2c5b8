"""Backfills with Luigi's own range tool: `luigi --module tasks RangeDaily --of Nightly --start ...`.

This is Luigi's RangeDaily, parameters and all (Luigi instantiates the most derived class of a
name). Two things make it one of ours: the process is prepared when it is created, as it is for
every task of ours (tasks/base/startup.py: with `--scheduler-host`, a central scheduler and
workers that stay, the GPU count offered, the one-line errors), since it is the root task and
its nights are created only after Luigi has built its scheduler and worker; and its task id names
the data set, so two data sets' backfills of the same nights on one luigid are two tasks.
"""

from __future__ import annotations

import luigi.tools.range

from tasks.base.startup import PreparedTask


class RangeDaily(PreparedTask, luigi.tools.range.RangeDaily):
    __doc__ = luigi.tools.range.RangeDaily.__doc__
