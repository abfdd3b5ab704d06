"""Which runs a suite table shows, on which images they are compared, and which are (tied-)best.

* **One row per configured method**: runs are grouped by :func:`method_identity` (the method's card name and
  spec, its options in effect without machine-local paths, and the identity of its weights: the sha256 of the
  card's weight files). A group's row is its most complete run (most images scored; the newest ``started_at``
  on ties); the group's other runs are listed below the table.
* **Image-set rule**: rows are ranked only on a common image set (:func:`reference_set`): the full suite when
  at least one row scored every image of it, otherwise the largest image set any row scored (ties: the set
  more rows cover, then the sorted ids). A row that did not score every image of that set is *partial*: it is
  shown ("2 of 7"), never marked best and sorted after the ranked rows.
* **Tied-best**: per metric, the ranked rows are compared on the images all of them have a value for; the best
  mean there is marked best, and every other ranked row whose paired difference to the best is not significant
  (:func:`op4ksr_bench.stats.paired_test`, Wilcoxon signed-rank) is marked tied-best.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from op4ksr_bench.report.runs import LoadedRun
from op4ksr_bench.report.sitepaths import looks_like_path
from op4ksr_bench.stats import paired_test


def method_identity(run: LoadedRun) -> str:
    """The configured method of a run: card name, spec as written (``folder:/a/out`` and ``folder:/b/out`` are two
    methods), options (machine-local paths left out: a checkpoint folder is identified by its weights) and weights
    identity (the sha256 of the card's weight files)."""
    method = (run.raw or run.run)["method"]
    options = {key: value for key, value in sorted(method["options"].items()) if not looks_like_path(value)}
    weights = [
        (item.get("sha256") or item.get("name")) if isinstance(item, dict) else item
        for item in method["card"].get("weights") or []
    ]  # by content: a weights file named by a local path is the same file elsewhere
    identity = {
        "method": method["card"].get("name"),
        "spec": method.get("spec"),
        "options": options,
        "weights": weights,
    }
    return json.dumps(identity, sort_keys=True, default=str)


def _completeness(run: LoadedRun) -> tuple[int, str, str]:
    return (len(run.ok_samples), str(run.run.get("started_at", "")), run.path)


def select_runs(runs: list[LoadedRun]) -> tuple[list[LoadedRun], dict[str, list[LoadedRun]]]:
    """``(shown, others)``: one run per configured method, and per shown run's path the group's other runs
    (newest first)."""
    groups: dict[str, list[LoadedRun]] = {}
    for run in runs:
        groups.setdefault(method_identity(run), []).append(run)
    shown, others = [], {}
    for members in groups.values():
        members = sorted(members, key=_completeness, reverse=True)
        shown.append(members[0])
        others[members[0].path] = sorted(members[1:], key=lambda r: (str(r.run.get("started_at", "")), r.path))[::-1]
    return shown, others


def scored_ids(run: LoadedRun) -> frozenset[str]:
    """Images the run scored (``ok`` rows)."""
    return frozenset(str(sample["id"]) for sample in run.ok_samples)


def suite_size(run: LoadedRun) -> int:
    """Images in the suite (``suite.count``), or in the run when the run does not record the suite's size."""
    count = run.suite.get("count")
    if isinstance(count, int) and not isinstance(count, bool) and count > 0:
        return count
    total = run.run["counts"].get("total")
    return int(total) if isinstance(total, int) and not isinstance(total, bool) and total > 0 else len(run.samples)


@dataclass(frozen=True)
class ImageSet:
    """The images rows are ranked on.

    Attributes:
        ids: The images.
        full: Whether it is the whole suite.
        suite_size: Images in the suite.
        covered_by: Rows that scored every image of the set (the ranked rows).
        rows: Rows in the table.
    """

    ids: frozenset[str]
    full: bool
    suite_size: int
    covered_by: int
    rows: int

    def describe(self) -> str:
        if self.full:
            return (
                f"ranked on the full suite ({self.suite_size} images), scored by {self.covered_by} of {self.rows} runs"
            )
        return (
            f"no run scored all {self.suite_size} images: ranked on the largest image set any run scored "
            f"({len(self.ids)} of {self.suite_size}: {_some(sorted(self.ids))}), scored by {self.covered_by} of "
            f"{self.rows} runs"
        )


def _some(ids: list[str], limit: int = 8) -> str:
    return ", ".join(ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def reference_set(runs: list[LoadedRun]) -> ImageSet | None:
    """The image set of the image-set rule (see the module docstring); None when no run scored an image."""
    sets = [scored_ids(run) for run in runs]
    if not any(sets):
        return None
    size = max(suite_size(run) for run in runs)
    full = [ids for ids in sets if len(ids) >= size]
    candidates = full or [ids for ids in sets if ids]
    best = max(candidates, key=lambda ids: (len(ids), sum(ids <= other for other in sets), sorted(ids)[::-1]))
    return ImageSet(best, bool(full), size, sum(best <= other for other in sets), len(runs))


def is_ranked(run: LoadedRun, images: ImageSet | None) -> bool:
    """Whether the run scored every image of the reference set."""
    return images is not None and images.ids <= scored_ids(run)


def metric_values(run: LoadedRun, name: str) -> dict[str, float]:
    """Per-image finite values of metric ``name`` over the run's ``ok`` rows (image id -> value)."""
    values = {}
    for sample in run.ok_samples:
        value = (sample.get("metrics") or {}).get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            values[str(sample["id"])] = float(value)
    return values


@dataclass(frozen=True)
class Mark:
    """The ranking outcome of one cell: best, tied-best (with the test's wording), or neither."""

    best: bool = False
    tied: bool = False
    note: str = ""


def rank_column(
    values: list[dict[str, float]],
    ranked: list[bool],
    images: ImageSet | None,
    higher_is_better: bool | None,
    ideal: float | None = None,
) -> list[Mark]:
    """Best and tied-best marks of one metric column (one :class:`Mark` per row; see the module docstring).

    A two-sided metric (``ideal`` set, e.g. the seam score's no-seam level 0) is ranked by ``|value - ideal|``,
    smaller is better, so a value beyond the ideal is never best merely for being lower.
    """
    marks = [Mark() for _ in values]
    if higher_is_better is None or images is None:
        return marks
    if ideal is not None:
        values = [{key: abs(value - ideal) for key, value in row.items()} for row in values]
        higher_is_better = False
    eligible = [i for i, row in enumerate(values) if ranked[i] and row]
    if len(eligible) < 2:
        return marks
    common = set(images.ids)
    for i in eligible:
        common &= values[i].keys()
    if not common:
        return marks
    means = {i: math.fsum(values[i][key] for key in common) / len(common) for i in eligible}
    if len(set(means.values())) < 2:  # all equal: nothing to be best against
        return marks
    best = max(eligible, key=lambda i: (means[i] if higher_is_better else -means[i], -i))
    where = f"on the {len(common)} images all ranked runs scored"
    marks[best] = Mark(best=True, note=f"best mean {where}")
    reference = {key: values[best][key] for key in common}
    for i in eligible:
        if i == best:
            continue
        result = paired_test({key: values[i][key] for key in common}, reference)
        if result.significant:
            marks[i] = Mark(note=f"significantly worse than the best ({result.describe()})")
        else:
            marks[i] = Mark(tied=True, note=f"tied with the best: not significantly different ({result.describe()})")
    return marks
