"""``op4ksr-bench ls metrics`` and ``op4ksr-bench score``: the metric area's command bodies (they print).

``score`` pairs prediction and reference files by stem (or predictions with a built suite's references by image
id, under that suite's conventions: ``--suite``), scores them through
:func:`op4ksr_bench.metrics.scoring.score_files` (the runner's code path), and caches per-image values in
``<cache>/scores/`` keyed by the files' sha256 and each metric's full record (backend, settings), so a rerun
computes only what is new or changed. A prediction that cannot be scored becomes a per-image failure with its
reason; the others are scored and written, and the exit code is 1.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import sys
import time
from hashlib import sha256
from pathlib import Path
from typing import Any

from op4ksr_bench import __version__, paths
from op4ksr_bench.atomic import atomic_write_text, sha256_file
from op4ksr_bench.console import text_table, throughput
from op4ksr_bench.errors import Op4ksrError, UsageError
from op4ksr_bench.imagefiles import IMAGE_SUFFIXES, is_image_file
from op4ksr_bench.stats import CI_METHOD

FORMATS = ("table", "json", "csv")
ROW_FIELDS = ("id", "status", "reason")
"""Keys of a per-image row that are not metric values."""


def policy_of(metric_class: type) -> str:
    """The declared 4K policy of a metric class, as a short text."""
    tile = getattr(metric_class, "tile", None)
    if tile:
        return f"tiled-mean {tile}px"
    return "native"


def ls_metrics() -> None:
    """Print every registered metric: FR/NR, direction, backend, licence, 4K policy and weights presence."""
    from op4ksr_bench import weights
    from op4ksr_bench.metrics import METRICS

    header = ("name", "kind", "better", "range", "backend", "licence", "4K policy", "weights")
    rows = []
    for name in METRICS.names():
        metric_class = METRICS.get(name)
        missing = [file for file in metric_class.weights if not weights.is_present(file)]
        status = "-" if not metric_class.weights else ("present" if not missing else f"MISSING {', '.join(missing)}")
        licence = metric_class.licence + (" [non-commercial]" if metric_class.non_commercial else "")
        rows.append(
            (
                name + (" *" if metric_class.default else ""),
                metric_class.kind,
                direction(metric_class),
                score_range_text(metric_class),
                metric_class.backend,
                licence,
                policy_of(metric_class),
                status,
            )
        )
    print(text_table(header, rows))
    print("\n* computed by `score` when no --metrics are given (full-reference ones only with references)")
    if any(row[-1].startswith("MISSING") for row in rows):
        print("\nMissing weights: `op4ksr-bench weights list` says where each file goes and how to obtain it.")


# ---------------------------------------------------------------------------------------------------------- score


def image_files(folder: Path) -> dict[str, Path]:
    """Image files of ``folder`` by stem (not recursive). Two files with one stem are a usage error."""
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if is_image_file(path):
            if path.stem in found:
                raise UsageError(
                    f"{folder} holds two images named {path.stem!r} ({found[path.stem].name}, {path.name})"
                )
            found[path.stem] = path
    return found


def pair_files(
    pred: Path, ref: Path | None, references: dict[str, Path | None] | None = None
) -> tuple[list[tuple[str, Path, Path | None]], list[tuple[str, str]]]:
    """``(pairs, unpaired)``: ``(id, prediction, reference)`` by stem, and ``(id, reason)`` for each prediction
    that has no reference (it becomes a per-image failure; the others are still scored).

    Args:
        pred: Folder of predictions.
        ref: Folder of references, or None.
        references: References by id from a suite (used when ``ref`` is None): a prediction whose stem is not an
            image of the suite is unpaired; None values mean the suite has no ground truth for that image.

    Raises:
        UsageError: no image in ``pred``, or two images with one stem in a folder.
    """
    predictions = image_files(pred)
    if not predictions:
        raise UsageError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {pred}")
    if ref is None and references is None:
        return [(stem, path, None) for stem, path in predictions.items()], []
    if ref is not None:
        available: dict[str, Path | None] = dict(image_files(ref))
        where = f"no reference with the same stem in {ref}"
    else:
        available = dict(references or {})
        where = "not an image of the suite (predictions are named by image id)"
    pairs, unpaired = [], []
    for stem, path in predictions.items():
        if stem in available:
            pairs.append((stem, path, available[stem]))
        else:
            unpaired.append((stem, where))
    return pairs, unpaired


def suite_conventions(name: str, data: Path | None) -> dict[str, Any]:
    """The scoring conventions of a built suite: crop border, default metrics and its references by image id.

    Raises:
        ManifestError: the suite is not built in the data folder.
    """
    from op4ksr_bench.data.manifest import BuiltSuite

    built = BuiltSuite.open(Path(data) if data is not None else paths.data_dir(), name)
    references = {str(entry["id"]): built.hr_path(entry) for entry in built.entries}
    return {
        "name": built.spec.name,
        "version": built.spec.version,
        "hash": built.hash,
        "crop_border": int(built.spec.crop_border),
        "metrics": list(built.spec.metrics),
        "references": references,
        "has_hr": any(path is not None for path in references.values()),
    }


class ScoreCache:
    """Per-image values on disk: one JSON file per (prediction sha256, reference sha256), one entry per metric."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, pred_hash: str, ref_hash: str | None) -> Path:
        return self.folder / f"{pred_hash}-{ref_hash or 'none'}.json"

    def load(self, pred_hash: str, ref_hash: str | None) -> dict[str, dict[str, float | None]]:
        path = self._path(pred_hash, ref_hash)
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, OSError):
            return {}  # a damaged cache entry is recomputed

    def store(self, pred_hash: str, ref_hash: str | None, entries: dict[str, dict[str, float | None]]) -> None:
        atomic_write_text(self._path(pred_hash, ref_hash), json.dumps(entries, sort_keys=True))


def score_range_text(metric_class: type) -> str:
    """``[low, high]`` with ``inf`` for an unbounded side (the class's ``score_range``)."""
    low, high = metric_class.score_range
    return f"[{low:g}, {high:g}]"


def direction(metric_class) -> str:
    """``higher``, ``lower``, or ``near X`` for a metric whose best value is its ``ideal`` X (``seam``: near 0)."""
    if metric_class.ideal is not None:
        return f"near {metric_class.ideal:g}"
    return "higher" if metric_class.higher_is_better else "lower"


def metric_key(record: dict[str, Any]) -> str:
    """Cache key of a metric: the hash of its full record (name, backend, settings)."""
    return sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:24]


def _one_line(error: BaseException, limit: int = 400) -> str:
    text = " ".join(str(error).split()) or repr(error)
    return text[:limit] if isinstance(error, Op4ksrError) else f"{type(error).__name__}: {text[:limit]}"


def score(
    pred: Path,
    ref: Path | None,
    metrics: str | None,
    fmt: str,
    out: Path | None,
    device: str,
    suite: str | None = None,
    data: Path | None = None,
    crop_border: int | None = None,
) -> None:
    """Score a folder of predictions (against a folder of references, or a suite's) and print or write the result.

    A prediction that cannot be scored (no reference, unreadable, wrong size, a metric error) is a per-image
    failure with its reason (one stderr line each, and in the output); every other image is scored and written,
    means are over the scored images (with their count and 95 % bootstrap interval), and the exit code is 1
    when anything failed. ``suite`` applies that suite's conventions (crop border, default metrics, references),
    the same as ``op4ksr-bench run``; ``crop_border`` sets the border crop of full-reference metrics.
    """
    from op4ksr_bench.metrics.scoring import DEFAULT_METRICS, create_metrics, metric_record, score_files

    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if crop_border is not None and crop_border < 0:
        raise UsageError(f"--crop-border {crop_border}: must be 0 or more pixels")
    conventions = suite_conventions(suite, data) if suite else None
    references = conventions["references"] if conventions and ref is None else None
    pairs, failures = pair_files(Path(pred), Path(ref) if ref else None, references)
    has_refs = ref is not None or bool(conventions and conventions["has_hr"])
    border = crop_border if crop_border is not None else conventions["crop_border"] if conventions else 0
    if metrics is not None:
        names = [name.strip() for name in metrics.split(",") if name.strip()]
        if not names:
            raise UsageError("--metrics is empty; give comma-separated names (see `op4ksr-bench ls metrics`)")
        built, warnings = create_metrics(names, crop_border=border, device=device)
        if not has_refs:
            needing = [metric.name for metric in built if metric.kind == "FR"]
            if needing:
                where = f"suite {conventions['name']} has no ground truth" if conventions else "pass --ref DIR"
                raise UsageError(f"{', '.join(needing)} need references; {where}")
    else:
        from op4ksr_bench.metrics import METRICS

        candidates = conventions["metrics"] if conventions else DEFAULT_METRICS
        defaults = [name for name in candidates if has_refs or METRICS.get(name).kind == "NR"]
        built, warnings = create_metrics(None, default_names=defaults, crop_border=border, device=device)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not built:
        raise UsageError("no metric left to compute")
    for stem, reason in failures:
        print(f"failed {stem}: {reason}", file=sys.stderr)
    records = {metric.name: metric_record(metric) for metric in built}
    keys = {name: metric_key(record) for name, record in records.items()}
    cache = ScoreCache(paths.cache_root() / "scores")
    per_image: list[dict[str, Any]] = []
    started = time.monotonic()
    computed = 0
    for index, (stem, pred_path, ref_path) in enumerate(pairs, start=1):
        try:
            pred_hash = sha256_file(pred_path)
            ref_hash = sha256_file(ref_path) if ref_path is not None else None
            entries = cache.load(pred_hash, ref_hash)
            todo = [metric for metric in built if keys[metric.name] not in entries]
            if todo:
                values = score_files(todo, pred_path, ref_path)
                for metric in todo:
                    entries[keys[metric.name]] = {
                        key: value
                        for key, value in values.items()
                        if key == metric.name or key.startswith(metric.name + ".")
                    }
                cache.store(pred_hash, ref_hash, entries)
                computed += 1
        except Exception as error:  # one image's problem never loses the others' work
            reason = _one_line(error)
            failures.append((stem, reason))
            print(f"failed {stem}: {reason}", file=sys.stderr)
            continue
        row: dict[str, Any] = {"id": stem, "status": "ok"}
        for metric in built:
            row.update(entries[keys[metric.name]])
        per_image.append(row)
        _progress(index, len(pairs), started, stem, cached=not todo)
    if computed < len(per_image):
        print(f"{len(per_image) - computed} of {len(pairs)} image(s) came from the cache", file=sys.stderr)
    failures.sort()
    per_image += [{"id": stem, "status": "failed", "reason": reason} for stem, reason in failures]
    per_image.sort(key=lambda row: row["id"])
    summary = summarize_rows(per_image)
    settings = {
        "pred": str(pred),
        "ref": str(ref) if ref else None,
        "suite": {k: conventions[k] for k in ("name", "version", "hash")} if conventions else None,
        "crop_border": border,
        "device": device,
        "op4ksr_bench": __version__,
        "metrics": list(records.values()),
        "ci95": CI_METHOD,
    }
    if conventions and ref is None:
        missing = sorted(set(conventions["references"]) - {row["id"] for row in per_image})
        if missing:
            settings["suite_images_without_prediction"] = missing
            print(f"note: {len(missing)} of {len(conventions['references'])} suite images have no prediction "
                  f"in {pred}", file=sys.stderr)  # fmt: skip
    text = _render(fmt, per_image, summary, settings, [metric.name for metric in built])
    if out is not None:
        atomic_write_text(Path(out), text)
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if failures:
        import typer

        print(f"{len(failures)} of {len(per_image)} image(s) failed; the rest were scored", file=sys.stderr)
        raise typer.Exit(code=1)


def summarize_rows(per_image: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Over the scored (``ok``) rows, per value key: mean, median, count and 95 % interval; for a dominant period
    (a category) its most frequent value and how often, never a mean."""
    from op4ksr_bench.results import is_categorical
    from op4ksr_bench.stats import bootstrap_ci, finite

    ok = [row for row in per_image if row.get("status") == "ok"]
    keys = list(dict.fromkeys(key for row in ok for key in row if key not in ROW_FIELDS))
    summary: dict[str, dict[str, Any]] = {"mean": {}, "median": {}, "count": {}, "ci95": {}, "mode": {}}
    for key in keys:
        values = finite([row.get(key) for row in ok])
        summary["count"][key] = len(values)
        if is_categorical(key):
            counts = {value: values.count(value) for value in values}
            best = min(counts.items(), key=lambda item: (-item[1], item[0])) if counts else None
            summary["mode"][key] = [best[0], best[1]] if best else None
            continue
        summary["mean"][key] = statistics.fmean(values) if values else None
        summary["median"][key] = float(statistics.median(values)) if values else None
        summary["ci95"][key] = bootstrap_ci(values)
    return summary


def _progress(done: int, total: int, started: float, stem: str, cached: bool) -> None:
    note = " (cached)" if cached else ""
    print(f"[{done}/{total}] {stem}{note} | {throughput(done, total, time.monotonic() - started)}", file=sys.stderr)


def _format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return str(value)
        return f"{value:.4f}"
    return str(value)


def _render(
    fmt: str,
    per_image: list[dict[str, Any]],
    summary: dict[str, dict[str, Any]],
    settings: dict[str, Any],
    headline: list[str],
) -> str:
    scored = sum(row["status"] == "ok" for row in per_image)
    if fmt == "json":
        document = {
            "per_image": per_image,
            **summary,
            "scored": scored,
            "failed": [{"id": row["id"], "reason": row["reason"]} for row in per_image if row["status"] != "ok"],
            "settings": settings,
        }
        return json.dumps(document, indent=2) + "\n"
    keys = list(dict.fromkeys(key for row in per_image for key in row if key not in ROW_FIELDS))
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["id", *keys, "status", "reason"])
        for row in per_image:
            cells = ("" if row.get(key) is None else repr(row[key]) for key in keys)
            writer.writerow([row["id"], *cells, row["status"], row.get("reason") or ""])
        intervals = summary["ci95"]
        writer.writerow(["count", *(summary["count"].get(key, "") for key in keys), "", ""])
        for label, side in (("ci95_low", 0), ("ci95_high", 1)):
            values = (repr(intervals[key][side]) if intervals.get(key) else "" for key in keys)
            writer.writerow([label, *values, "", ""])
        for label in ("mean", "median"):
            values = ("" if summary[label].get(key) is None else repr(summary[label][key]) for key in keys)
            writer.writerow([label, *values, "", ""])
        return buffer.getvalue()
    rows = [
        (row["id"], *(_format_value(row.get(name)) if row["status"] == "ok" else "-" for name in headline))
        for row in per_image
    ]
    rows.append(("mean", *(_format_value(summary["mean"].get(name)) for name in headline)))
    rows.append(
        (
            "95% CI",
            *(
                f"[{_format_value(summary['ci95'][name][0])}, {_format_value(summary['ci95'][name][1])}]"
                if summary["ci95"].get(name)
                else "-"
                for name in headline
            ),
        )
    )
    rows.append(("median", *(_format_value(summary["median"].get(name)) for name in headline)))
    rows.append(("n", *(str(summary["count"].get(name, 0)) for name in headline)))
    text = text_table(("id", *headline), rows) + "\n"
    failed = [row for row in per_image if row["status"] != "ok"]
    if failed:
        text += f"\n{len(failed)} failed (means are over the {scored} scored images):\n"
        text += "".join(f"  {row['id']}: {row['reason']}\n" for row in failed)
    return text
