"""`overnight`: the things that are not a pipeline step (example data, migrations, runs, models,
promotion and rollback, reports, plans). An adapter, like the tasks: each command parses its
options, calls the library and prints.
"""

from tasks.cli import disk, drift, labels, maintenance, models, nightly, plans, runs, serve  # noqa: F401 - each module adds its commands to main
from tasks.cli.app import main

__all__ = ["main"]
