"""Model repositories for tests: the trained default model placed as several versions.

A version made here is the trained artifact under another name, version and training time
(rewritten in its manifest), which is all a server looks at to tell versions apart.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ml_service.model.artifact import MANIFEST


def add_version(
    source: Path, repository: Path, version: str, name: str = "housing", created_at: str = ""
) -> Path:
    """Copy the artifact at `source` into `repository` as `name`/`version` (atomically, as
    `ml-service train --repository` writes one) and return its directory."""
    target = repository / name / version
    staging = repository / name / f".{version}-staging"
    staging.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, staging)
    manifest = json.loads((staging / MANIFEST).read_text())
    manifest.update(name=name, version=version)
    manifest["created_at"] = created_at or f"2030-01-01T00:00:{len(version) % 60:02d}+00:00"
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
    staging.rename(target)
    return target


def stamp(number: int) -> str:
    """The training time of the `number`-th version: later numbers are newer."""
    return f"2030-01-01T00:{number // 60:02d}:{number % 60:02d}+00:00"
