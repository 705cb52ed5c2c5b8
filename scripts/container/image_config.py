"""Write the image's /etc/luigi/luigi.cfg: the repository's luigi.cfg with its paths under /data.

Luigi reads /etc/luigi/luigi.cfg first and the file LUIGI_CONFIG_PATH names after it, so a
data set's own file in the mounted folder overrides these defaults as it does on a workstation.

    python3 image_config.py luigi.cfg > /etc/luigi/luigi.cfg
"""

from __future__ import annotations

import sys
from pathlib import Path

# The repository's relative defaults, and where they point in the image. A line that is gone
# fails the build: the image must not silently keep a path relative to its working folder.
IN_THE_IMAGE = {
    "logging_conf_file = logging.ini": "logging_conf_file = /etc/luigi/logging.ini",
    "data_root = data": "data_root = /data",
    "database_url = sqlite:///data/overnight.db": "database_url = sqlite:////data/overnight.db",
    "path = data/raw/digits": "path = /data/raw/digits",
}


def image_config(text: str) -> str:
    lines = text.splitlines()
    for workstation, image in IN_THE_IMAGE.items():
        if workstation not in lines:
            raise SystemExit(
                f"luigi.cfg: no line {workstation!r} to point at /data (scripts/container/image_config.py)"
            )
        lines[lines.index(workstation)] = image
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(image_config(Path(sys.argv[1]).read_text()))
