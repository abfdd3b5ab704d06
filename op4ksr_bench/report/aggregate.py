"""Read result folders and turn them into leaderboard tables: one table per suite, one row per run.

Everything here is a pure function of the result files: rows and columns come out in a fixed order, and
nothing depends on the clock or on the machine that renders the page. A metric's direction
(``higher_is_better``) is read from the metric metadata each ``run.json`` records, nowhere else.

A run folder whose files fail schema validation (:func:`op4ksr_bench.results.load_run`) is skipped, and the
reason is kept so the page can name it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from op4ksr_bench.results import load_run

logger = logging.getLogger(__name__)

# Display order of the project's metrics (presentation only; unknown metrics follow alphabetically).
METRIC_ORDER = (
    "psnr", "ssim", "psnr-y", "ssim-y", "ms-ssim", "lpips-alex", "lpips-vgg", "dists", "dpas",
    "niqe", "musiq", "maniqa", "clipiqa", "topiq-nr", "pas", "seam", "glcm", "compression-ratio",
)  # fmt: skip
NON_COMMERCIAL = re.compile(r"non[- ]?commercial|\bnc\b|-nc-|-nc$", re.IGNORECASE)
PERIOD_KEY = re.compile(r"^pas\.p(\d+)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def slugify(text: str, limit: int = 60) -> str:
    """A file-name-safe form of ``text``; a short hash is appended whenever characters had to change."""
    slug = _UNSAFE.sub("-", text).strip("-.")[:limit] or "x"
    if slug != text:
        slug += "-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:6]
    return slug


def is_non_commercial(licence: str | None) -> bool:
    """True if a licence string restricts commercial use (``CC-BY-NC-4.0``, ``non-commercial``, ...)."""
    return bool(licence) and bool(NON_COMMERCIAL.search(licence))


def format_value(value: float | None) -> str:
    """A metric value with precision by magnitude (24.31, 4.931, 0.7123); ``-`` for no value."""
    if value is None or not math.isfinite(value):
        return "-"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 10:
        return f"{value:.2f}"
    if magnitude >= 1:
        return f"{value:.3f}"
    return f"{value:.4f}"


def format_bytes(count: float | None) -> str:
    """Bytes as MiB/GiB (binary units); ``-`` for unknown."""
    if count is None:
        return "-"
    if count >= 1024**3:
        return f"{count / 1024**3:.2f} GiB"
    return f"{count / 1024**2:.0f} MiB"


@dataclass(frozen=True)
class SkippedRun:
    """A run folder that could not be used, and why (shown on the page)."""

    path: str
    reason: str


@dataclass(frozen=True)
class LoadedRun:
    """A validated run folder.

    Attributes:
        folder: The run folder on disk.
        path: The folder relative to the results root (POSIX form), as shown on the page.
        key: A unique file-name-safe id, used for the run's provenance page and crop files.
        run: The ``run.json`` object.
        samples: The ``samples.jsonl`` rows, sorted by image id.
    """

    folder: Path
    path: str
    key: str
    run: dict[str, Any]
    samples: tuple[dict[str, Any], ...]

    @property
    def suite(self) -> dict[str, Any]:
        return self.run["suite"]

    @property
    def card(self) -> dict[str, Any]:
        return self.run["method"]["card"]

    @property
    def options(self) -> dict[str, Any]:
        return self.run["method"]["options"]

    @property
    def label(self) -> str:
        """The method's display name (its spec when the card has none)."""
        return str(self.card.get("display_name") or self.card.get("name") or self.run["method"]["spec"])

    @property
    def inference(self) -> str:
        """``patch-free`` or ``tiled T/O [blend]`` (tile and overlap in output pixels) from the options in effect."""
        tile = self.options.get("tile", None if self.card.get("patch_free", True) else self.card.get("default_tile"))
        if not tile:
            return "patch-free"
        overlap = self.options.get("overlap", self.card.get("default_overlap"))
        blend = self.options.get("blend")
        return f"tiled {tile}/{overlap if overlap is not None else 0}" + (f" {blend}" if blend else "")

    @property
    def ok_samples(self) -> list[dict[str, Any]]:
        return [s for s in self.samples if s.get("status") == "ok"]

    @property
    def failed_samples(self) -> list[dict[str, Any]]:
        return [s for s in self.samples if s.get("status") == "failed"]

    @property
    def device(self) -> str:
        environment = self.run["environment"]
        name = environment.get("device_name") or environment.get("device") or "-"
        return str(name)

    @property
    def status(self) -> str:
        """``complete``, or what is unfinished (``incomplete: 3 of 7 images pending``, ``running``)."""
        status = str(self.run.get("status", "complete"))
        pending = self.run["counts"].get("pending")
        if status != "complete" and pending:
            return f"{status}: {pending} of {self.run['counts'].get('total')} images pending"
        return status

    @property
    def selection(self) -> str:
        """How the run's images were chosen: the whole suite, or the first N (``--limit``)."""
        limit = (self.run.get("selection") or {}).get("limit")
        count = self.suite.get("count")
        if limit:
            return f"the first {limit} of {count} images (--limit)" if count else f"the first {limit} images (--limit)"
        return f"all {count} images" if count else "all images"

    @property
    def skipped_metrics(self) -> dict[str, str]:
        """Metrics the run could not compute at all, with the recorded reason (e.g. weights missing)."""
        skipped = self.run.get("skipped_metrics") or {}
        return {str(k): str(v) for k, v in skipped.items()} if isinstance(skipped, dict) else {}


@dataclass(frozen=True)
class MetricColumn:
    """A metric column: direction and metadata from the runs' ``run.json`` metric records."""

    name: str
    higher_is_better: bool
    kind: str
    backend: str
    licence: str
    non_commercial: bool

    @property
    def arrow(self) -> str:
        return "\u2191" if self.higher_is_better else "\u2193"

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"


@dataclass(frozen=True)
class Cell:
    """One table cell: the value (None shows ``-``), its text, a tooltip note, and whether it is the best."""

    value: float | None
    text: str
    note: str
    best: bool = False
    partial: bool = False


@dataclass(frozen=True)
class Row:
    """One run in a suite table."""

    run: LoadedRun
    metrics: dict[str, Cell]
    seconds: Cell
    memory: Cell
    images: str
    periods: dict[int, float]


@dataclass(frozen=True)
class SuiteTable:
    """All runs of one suite (name, version and hash), with columns and rows in display order."""

    key: str
    name: str
    variant: str
    version: str
    hash: str
    scale: int
    info: dict[str, Any]
    columns: tuple[MetricColumn, ...]
    rows: tuple[Row, ...]
    warnings: tuple[str, ...]


def discover(results: Path) -> list[Path]:
    """Run folders below ``results`` (every folder holding a ``run.json``), in sorted order."""
    return sorted(path.parent for path in Path(results).rglob("run.json"))


def load_runs(results: Path) -> tuple[list[LoadedRun], list[SkippedRun]]:
    """Load every run folder under ``results``; invalid ones are returned as :class:`SkippedRun` with a reason.

    Shard runs (``run.json`` ``shard`` set) are skipped: they are parts of a run that ``op4ksr-bench merge`` joins.
    """
    results = Path(results)
    runs: list[LoadedRun] = []
    skipped: list[SkippedRun] = []
    used_keys: set[str] = set()
    for folder in discover(results):
        path = folder.relative_to(results).as_posix()
        try:
            run, samples = load_run(folder)
        except ValueError as error:
            reason = str(error).replace(str(folder), path)
            skipped.append(SkippedRun(path=path, reason=f"fails schema validation: {reason}"))
            logger.warning("skipping %s: %s", path, reason)
            continue
        shard = run.get("shard")
        if shard:
            merged = folder.parent / str(run.get("run_id")) / "run.json"
            if merged.is_file():
                logger.debug("%s: a shard of %s, which is merged", path, merged.parent.name)
            else:
                where = f"shard {shard.get('index')} of {shard.get('count')}" if isinstance(shard, dict) else "a shard"
                reason = f"{where} of run {run.get('run_id')}, not merged yet; run `op4ksr-bench merge`"
                skipped.append(SkippedRun(path=path, reason=reason))
            continue
        key = slugify(path.replace("@", "-").replace("/", "--"), limit=120)
        while key in used_keys:  # only if two paths slugify alike
            key += "-"
        used_keys.add(key)
        ordered = tuple(sorted(samples, key=lambda sample: sample["id"]))
        runs.append(LoadedRun(folder=folder, path=path, key=key, run=run, samples=ordered))
    return runs, skipped


def _column_order(name: str) -> tuple[int, str]:
    return (METRIC_ORDER.index(name), name) if name in METRIC_ORDER else (len(METRIC_ORDER), name)


def _columns(runs: list[LoadedRun], warnings: list[str]) -> tuple[MetricColumn, ...]:
    found: dict[str, MetricColumn] = {}
    for run in runs:
        for name, meta in run.run["metrics"].items():
            column = MetricColumn(
                name=name,
                higher_is_better=bool(meta["higher_is_better"]),
                kind=str(meta.get("kind", "")),
                backend=str(meta.get("backend", "")),
                licence=str(meta.get("licence", "")),
                non_commercial=bool(meta.get("non_commercial")) or is_non_commercial(meta.get("licence")),
            )
            if name in found and found[name].higher_is_better != column.higher_is_better:
                warnings.append(f"runs disagree on the direction of {name}; using {found[name].direction}")
            found.setdefault(name, column)
        for name in run.skipped_metrics:
            if name not in run.run["metrics"] and name not in found:
                logger.debug("%s skipped %s, which no run records metadata for", run.path, name)
    return tuple(found[name] for name in sorted(found, key=_column_order))


def _metric_cell(run: LoadedRun, name: str) -> Cell:
    """The mean of one metric over a run's images, or ``-`` with the reason there is no value."""
    ok = run.ok_samples
    failed = run.failed_samples
    if name in run.skipped_metrics:
        return Cell(None, "-", f"not scored: {run.skipped_metrics[name]}")
    if name not in run.run["metrics"]:
        return Cell(None, "-", "not scored: not among the metrics of this run")
    summary = run.run["summary"].get(name) or {}
    mean = summary.get("mean")
    if mean is None or not math.isfinite(mean):
        if not ok and failed:
            return Cell(None, "-", f"no value: all {len(failed)} images failed ({failed[0].get('reason') or '?'})")
        reasons = sorted({str(s.get("reason")) for s in ok if s.get("reason") and s["metrics"].get(name) is None})
        why = "; ".join(reasons) if reasons else "the metric returned no value for any image"
        return Cell(None, "-", f"no value: {why}")
    count = int(summary.get("count") or 0)
    total = len(run.samples)
    note = f"mean over {count} images"
    if summary.get("median") is not None:
        note += f"; median {format_value(summary['median'])}, std {format_value(summary.get('std'))}"
    partial = count < total
    if partial:
        note += f"; {total - count} of {total} images have no value"
        if failed:
            note += f" ({len(failed)} failed: {failed[0].get('reason') or '?'})"
    return Cell(float(mean), format_value(mean), note, partial=partial)


def _seconds_cell(run: LoadedRun) -> Cell:
    values = [float(s["seconds"]) for s in run.ok_samples if isinstance(s.get("seconds"), int | float)]
    timing = run.run["method"].get("timing")
    if not values:
        if timing == "none":
            return Cell(None, "-", "not measured: the method's outputs were computed elsewhere")
        return Cell(None, "-", "no timing recorded")
    mean = sum(values) / len(values)
    how = " (amortised over the batch)" if timing == "amortised" else ""
    return Cell(mean, format_value(mean), f"mean inference seconds per image over {len(values)} images{how}")


def _memory_cell(run: LoadedRun) -> Cell:
    values = [int(s["peak_memory_bytes"]) for s in run.samples if isinstance(s.get("peak_memory_bytes"), int | float)]
    if not values:
        return Cell(None, "-", "no peak memory recorded")
    peak = max(values)
    kind = run.run["environment"].get("memory_kind")
    note = f"largest peak memory over {len(values)} images: {peak:,} bytes" + (f" ({kind})" if kind else "")
    return Cell(float(peak), format_bytes(peak), note)


def _periods(run: LoadedRun) -> dict[int, float]:
    """Mean PAS per spatial period (px) from the run summary's ``pas.p<period>`` entries."""
    periods = {}
    for key, summary in run.run["summary"].items():
        match = PERIOD_KEY.match(key)
        if match and isinstance(summary, dict) and summary.get("mean") is not None:
            periods[int(match.group(1))] = float(summary["mean"])
    return dict(sorted(periods.items()))


def _mark_best(cells: list[Cell], higher_is_better: bool) -> list[Cell]:
    values = [c.value for c in cells if c.value is not None]
    if len(set(values)) < 2:  # nothing to be best against: one value, or all equal
        return cells
    best = max(values) if higher_is_better else min(values)
    return [Cell(c.value, c.text, c.note, best=c.value == best, partial=c.partial) for c in cells]


def suite_key(name: str, version: str) -> str:
    """File-name-safe id of a suite version (``4ksr-syn-v1``)."""
    return slugify(f"{name}-v{version}")


def build_tables(runs: list[LoadedRun]) -> list[SuiteTable]:
    """Group runs by suite (name, version, hash) and build one table each, sorted by suite then method label."""
    groups: dict[tuple[str, str, str], list[LoadedRun]] = {}
    for run in runs:
        suite = run.suite
        groups.setdefault((str(suite["name"]), str(suite["version"]), str(suite["hash"])), []).append(run)
    versions: dict[tuple[str, str], int] = {}
    for name, version, _ in groups:
        versions[(name, version)] = versions.get((name, version), 0) + 1
    tables = []
    for (name, version, suite_hash), members in sorted(groups.items()):
        members.sort(key=lambda run: (run.label.lower(), run.inference, run.path))
        warnings: list[str] = []
        key = suite_key(name, version)
        if versions[(name, version)] > 1:
            key += "-" + suite_hash[:8]
            warnings.append(
                f"other runs of {name} v{version} used a different suite hash; they are in a separate table "
                "because their numbers are not comparable"
            )
        columns = _columns(members, warnings)
        metric_cells = {
            column.name: _mark_best([_metric_cell(run, column.name) for run in members], column.higher_is_better)
            for column in columns
        }
        seconds = _mark_best([_seconds_cell(run) for run in members], higher_is_better=False)
        memory = _mark_best([_memory_cell(run) for run in members], higher_is_better=False)
        rows = []
        for index, run in enumerate(members):
            images = f"{len(run.ok_samples)}/{run.run['counts'].get('total', len(run.samples))}"
            rows.append(
                Row(
                    run=run,
                    metrics={name: cells[index] for name, cells in metric_cells.items()},
                    seconds=seconds[index],
                    memory=memory[index],
                    images=images,
                    periods=_periods(run),
                )
            )
        first = members[0].suite
        info = {k: v for k, v in sorted(first.items()) if isinstance(v, str | int | float | bool)}
        tables.append(
            SuiteTable(
                key=key,
                name=name,
                variant=str(first.get("variant") or "-"),
                version=version,
                hash=suite_hash,
                scale=int(first["scale"]),
                info=info,
                columns=columns,
                rows=tuple(rows),
                warnings=tuple(warnings),
            )
        )
    return tables


def table_data(tables: list[SuiteTable], skipped: list[SkippedRun]) -> dict[str, Any]:
    """The leaderboard as plain JSON-serialisable data (written as ``data.json`` beside the pages)."""
    suites = []
    for table in tables:
        rows = []
        for row in table.rows:
            rows.append(
                {
                    "run": row.run.path,
                    "method": row.run.label,
                    "spec": row.run.run["method"]["spec"],
                    "inference": row.run.inference,
                    "steps": row.run.card.get("steps"),
                    "licence": row.run.card.get("licence"),
                    "device": row.run.device,
                    "images": row.images,
                    "status": row.run.status,
                    "seconds_per_image": row.seconds.value,
                    "peak_memory_bytes": row.memory.value,
                    "metrics": {name: cell.value for name, cell in row.metrics.items()},
                    "missing": {name: cell.note for name, cell in row.metrics.items() if cell.value is None},
                    "best": sorted(name for name, cell in row.metrics.items() if cell.best),
                    "pas_per_period": {str(period): value for period, value in row.periods.items()},
                }
            )
        suites.append(
            {
                "key": table.key,
                "name": table.name,
                "variant": table.variant,
                "version": table.version,
                "hash": table.hash,
                "scale": table.scale,
                "metrics": [
                    {"name": c.name, "higher_is_better": c.higher_is_better, "kind": c.kind} for c in table.columns
                ],
                "rows": rows,
                "warnings": list(table.warnings),
            }
        )
    return {
        "schema": "op4ksr-bench/leaderboard@1",
        "suites": suites,
        "skipped": [{"path": s.path, "reason": s.reason} for s in skipped],
    }
