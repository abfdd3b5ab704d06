"""Turn loaded runs into leaderboard tables: one table per suite, one row per run, one column per metric.

Everything here is a pure function of the result files: rows and columns come out in a fixed order, and
nothing depends on the clock or on the machine that renders the page. A metric's direction
(``higher_is_better``) is read from the metric metadata each ``run.json`` records, nowhere else.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from op4ksr_bench.report.runs import LoadedRun, SkippedRun, is_non_commercial, slugify
from op4ksr_bench.safepaths import displayable

# Display order of the project's metrics (presentation only; unknown metrics follow alphabetically).
METRIC_ORDER = (
    "psnr", "ssim", "psnr-y", "ssim-y", "ms-ssim", "lpips-alex", "lpips-vgg", "dists", "dpas",
    "niqe", "musiq", "maniqa", "clipiqa", "topiq-nr", "pas", "seam", "glcm", "compression-ratio",
)  # fmt: skip
PERIOD_KEY = re.compile(r"^pas\.p(\d+)$")


def format_value(value: float | None) -> str:
    """A metric value with precision by magnitude (24.31, 4.931, 0.7123); ``-`` for no value."""
    if not displayable(value):  # None, NaN, infinities, absurd magnitudes, anything not a number
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
    if not displayable(count):
        return "-"
    if count >= 1024**3:
        return f"{count / 1024**3:.2f} GiB"
    return f"{count / 1024**2:.0f} MiB"


@dataclass(frozen=True)
class MetricColumn:
    """A metric column: direction and metadata from the runs' ``run.json`` metric records."""

    name: str
    higher_is_better: bool | None
    kind: str
    backend: str
    licence: str
    non_commercial: bool

    @property
    def arrow(self) -> str:
        return "" if self.higher_is_better is None else "\u2191" if self.higher_is_better else "\u2193"

    @property
    def direction(self) -> str:
        if self.higher_is_better is None:
            return "direction unknown: no run computed it"
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
    for run in runs:  # a metric every run skipped still gets its column, to show why it has no values
        for name in run.skipped_metrics:
            if name not in found:
                found[name] = MetricColumn(name, None, kind="", backend="", licence="", non_commercial=False)
    return tuple(found[name] for name in sorted(found, key=_column_order))


def _metric_cell(run: LoadedRun, name: str) -> Cell:
    """The mean of one metric over a run's images, or ``-`` with the reason there is no value."""
    ok = run.ok_samples
    failed = run.failed_samples
    if name in run.skipped_metrics:
        return Cell(None, "-", f"not scored: {run.skipped_metrics[name]}")
    if name not in run.run["metrics"]:
        return Cell(None, "-", "not scored: not among the metrics of this run")
    if run.note(f"summary.{name}.mean"):
        return Cell(None, "-", f"not shown: {run.note(f'summary.{name}.mean')}")
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
        if _dropped(run, "seconds"):
            return Cell(None, "-", f"not shown: {_dropped(run, 'seconds')}")
        if timing == "none":
            return Cell(None, "-", "not measured: the method's outputs were computed elsewhere")
        return Cell(None, "-", "no timing recorded")
    mean = sum(values) / len(values)
    how = " (amortised over the batch)" if timing == "amortised" else ""
    left_out = f"; not shown: {_dropped(run, 'seconds')}" if _dropped(run, "seconds") else ""
    return Cell(mean, format_value(mean), f"mean inference seconds per image over {len(values)} images{how}{left_out}")


def _dropped(run: LoadedRun, field: str) -> str | None:
    """The note of the first sample whose ``field`` could not be shown (NaN, infinite, not a number), if any."""
    return next(
        (note for key, note in run.notes.items() if key.startswith("samples.") and key.endswith(f".{field}")), None
    )


def _memory_cell(run: LoadedRun) -> Cell:
    values = [int(s["peak_memory_bytes"]) for s in run.samples if isinstance(s.get("peak_memory_bytes"), int | float)]
    if not values:
        return Cell(None, "-", f"not shown: {_dropped(run, 'peak_memory_bytes')}" if _dropped(run, "peak_memory_bytes")
                    else "no peak memory recorded")  # fmt: skip
    peak = max(values)
    kind = run.run["environment"].get("memory_kind")
    note = f"largest peak memory over {len(values)} images: {peak:,} bytes" + (f" ({kind})" if kind else "")
    note += f"; not shown: {_dropped(run, 'peak_memory_bytes')}" if _dropped(run, "peak_memory_bytes") else ""
    return Cell(float(peak), format_bytes(peak), note)


def _periods(run: LoadedRun) -> dict[int, float]:
    """Mean PAS per spatial period (px) from the run summary's ``pas.p<period>`` entries."""
    periods = {}
    for key, summary in run.run["summary"].items():
        match = PERIOD_KEY.match(key)
        if match and isinstance(summary, dict) and summary.get("mean") is not None:
            periods[int(match.group(1))] = float(summary["mean"])
    return dict(sorted(periods.items()))


def _mark_best(cells: list[Cell], higher_is_better: bool | None) -> list[Cell]:
    values = [c.value for c in cells if c.value is not None]
    if higher_is_better is None or len(set(values)) < 2:  # nothing to be best against: one value, or all equal
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
