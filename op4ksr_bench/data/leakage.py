"""The checked guarantee that no benchmark image leaks from the training set.

Across every suite built in a data folder: no benchmark image (any task but ``train``) may come from the same
source photograph (``source_sha256``) as a training crop, and none may have a perceptual hash within
``distance`` bits of a training crop's. Perceptual hashes are cached by file sha256 in ``<data>/.cache/phash``.
"""

from __future__ import annotations

from pathlib import Path

from op4ksr_bench.atomic import atomic_write_text
from op4ksr_bench.data.curation import hamming, perceptual_hash
from op4ksr_bench.data.manifest import BuiltSuite
from op4ksr_bench.data.suites import suite_names
from op4ksr_bench.imageio import read_image

DEFAULT_DISTANCE = 8


def _phash(path: Path, digest: str, cache: Path) -> str:
    cached = cache / f"{digest}.txt"
    if cached.is_file():
        return cached.read_text().strip()
    value = perceptual_hash(read_image(path))
    atomic_write_text(cached, value)
    return value


def built_suites(data_dir: Path) -> list[BuiltSuite]:
    """Every suite of ``suites_dir()`` that is built in ``data_dir``."""
    suites = []
    for name in suite_names():
        if (Path(data_dir) / name / "suite.json").is_file():
            suites.append(BuiltSuite.open(data_dir, name))
    return suites


def leakage_problems(data_dir: Path, distance: int = DEFAULT_DISTANCE) -> list[str]:
    """One line per benchmark image that shares a source photograph with, or nearly duplicates, a training crop."""
    suites = built_suites(data_dir)
    train = [suite for suite in suites if suite.spec.task == "train"]
    benchmarks = [suite for suite in suites if suite.spec.task != "train"]
    if not train or not benchmarks:
        return []
    cache = Path(data_dir) / ".cache" / "phash"

    def hashes(suite: BuiltSuite) -> list[tuple[str, str, str | None]]:
        rows = []
        for entry in suite.entries:
            key = "hr" if entry.get("hr") else "lr"
            path = suite.hr_path(entry) if key == "hr" else suite.lr_path(entry)
            rows.append((entry["id"], _phash(path, entry[f"{key}_sha256"], cache), entry.get("source_sha256")))
        return rows

    train_rows = [(suite.spec.name, row) for suite in train for row in hashes(suite)]
    problems = []
    for suite in benchmarks:
        for image_id, value, source_digest in hashes(suite):
            for train_name, (train_id, train_value, train_source) in train_rows:
                if source_digest and source_digest == train_source:
                    problems.append(
                        f"{suite.spec.name}/{image_id} comes from the same photograph as {train_name}/{train_id}"
                    )
                elif hamming(value, train_value) <= distance:
                    problems.append(
                        f"{suite.spec.name}/{image_id} is a near-duplicate of {train_name}/{train_id} "
                        f"(pHash distance {hamming(value, train_value)} <= {distance})"
                    )
    return problems
