"""Where the images behind a comparison live: LR/HR in the built suite, SR outputs in the run folders.

The leaderboard reads images only for comparison crops. A suite that is not built, or was built with a
different hash than the runs used, is reported as a problem (one line) instead of an error, because the
tables and plots do not need it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from op4ksr_bench.report.runs import LoadedRun


@dataclass(frozen=True)
class SuiteImages:
    """The LR and HR images of a built suite, if the suite the runs used is available.

    Attributes:
        problem: Why the images cannot be used (None when they can).
    """

    problem: str | None
    built: Any = None
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def open(cls, data_dir: Path, name: str, suite_hash: str) -> SuiteImages:
        """Open suite ``name`` in ``data_dir`` and check it is the build (``suite_hash``) the runs used."""
        from op4ksr_bench.data.manifest import BuiltSuite
        from op4ksr_bench.errors import Op4ksrError

        try:
            built = BuiltSuite.open(Path(data_dir), name)
        except Op4ksrError as error:
            return cls(problem=f"suite images not available: {error}")
        if built.hash != suite_hash:
            return cls(
                problem=f"suite {name} in {data_dir} has hash {built.hash[:12]}, the runs used {suite_hash[:12]}; "
                "crops need the same build"
            )
        return cls(problem=None, built=built, entries={str(entry["id"]): entry for entry in built.entries})

    def entry(self, image_id: str) -> dict[str, Any] | None:
        return self.entries.get(image_id)

    def lr_path(self, entry: dict[str, Any]) -> Path:
        return Path(self.built.lr_path(entry))

    def hr_path(self, entry: dict[str, Any]) -> Path | None:
        path = self.built.hr_path(entry)
        return Path(path) if path else None


def output_image(run: LoadedRun, sample: dict[str, Any]) -> tuple[Path | None, str | None]:
    """The SR image a run saved for one sample, and its recorded sha256 (either may be None)."""
    relative = sample.get("output")
    path = run.folder / relative if relative else None
    return path, sample.get("output_sha256")
