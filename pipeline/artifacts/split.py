"""03_split/<version>/: the split manifest (ids per split) and the leakage checks that passed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.artifacts.folder import StageFolder, read_json, write_json
from pipeline.common.columns import EXAMPLE_ID, SPLIT, SPLITS

if TYPE_CHECKING:  # loaded by the functions that need it: `import tasks` stays light
    import pandas as pd

MANIFEST = "manifest.parquet"  # example_id, split; in the validated table's row order
CHECKS = "checks.json"


class SplitManifest(StageFolder):
    FILES = (MANIFEST, CHECKS)

    def manifest(self) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(self.file(MANIFEST))

    def checks(self) -> dict:
        return read_json(self.file(CHECKS))

    def parts(self, table: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """The validated table's rows of each split (train, validation, test).

        Raises:
            RuntimeError: the manifest does not follow the table's rows (another validation).
        """
        manifest = self.manifest()
        if len(manifest) != len(table) or not (manifest[EXAMPLE_ID].to_numpy() == table[EXAMPLE_ID].to_numpy()).all():
            raise RuntimeError(f"{self.path / MANIFEST} does not follow the rows of the validated table")
        assigned = manifest[SPLIT].to_numpy()
        return {name: table[assigned == name] for name in SPLITS}

    def write(self, manifest: pd.DataFrame, checks: dict) -> None:
        manifest.to_parquet(self.path / MANIFEST, index=False)
        write_json(self.path / CHECKS, checks)
