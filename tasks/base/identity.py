"""Task ids that name the data set, so that several data sets can share one central scheduler.

Luigi's task id is the family and the significant parameters. IngestData has none, so two data
sets' IngestData had one id: on one luigid the second data set's worker found "its" IngestData
running elsewhere and quit having built nothing. The data set lives in the configuration (the
data root, the raw data's path and the database), never in a parameter, so the id adds it here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import luigi
from luigi.task import task_id_str

from tasks.config import database_key, dataset, overnight


def scheduled_id(task: luigi.Task) -> str:
    """Luigi's id for `task` with this process's data set in its hash (the name part is Luigi's)."""
    params = task.to_str_params(only_significant=True, only_public=True)
    return task_id_str(task.get_task_family(), {**params, "dataset": dataset_key()})


def dataset_key() -> str:
    """The data root, the raw data and the database, as absolute paths and a password-free URL:
    equal on every host that mounts the shared folder at the same path and names the database
    with the same URL (the same host name: `db` and `db.example.com` are two data sets here)."""
    parts = [str(Path(overnight().data_root).absolute()), str(Path(dataset().path).absolute()), database_key()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]
