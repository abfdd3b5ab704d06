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
            built.check_hash()  # an edited suite.yaml or manifest is not the build the runs used
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
    """The SR image a run saved for one sample, and its recorded sha256 (either may be None).

    The path is None unless ``output`` lies inside the run folder (reached without a link) and the file's
    sha256 is the recorded one: the site never publishes a file the results merely point to.
    """
    import logging

    from op4ksr_bench.atomic import sha256_file
    from op4ksr_bench.safepaths import UnsafePathError, resolve_inside

    relative, recorded = sample.get("output"), sample.get("output_sha256")
    if not relative:
        return None, recorded
    try:
        path = resolve_inside(run.folder, relative, f"{run.path} image {sample.get('id')!r} output")
    except UnsafePathError as error:
        logging.getLogger(__name__).warning("%s; not shown", error)
        return None, recorded
    if not path.is_file() or sha256_file(path) != recorded:
        return None, recorded
    return path, recorded
