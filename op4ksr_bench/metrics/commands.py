"""``op4ksr-bench ls metrics`` and ``op4ksr-bench score``: the metric area's command bodies (they print).

``score`` pairs prediction and reference files by stem, scores them through
:func:`op4ksr_bench.metrics.scoring.score_files` (the runner's code path), and caches per-image values in
``<cache>/scores/`` keyed by the files' sha256 and each metric's full record (backend, settings), so a rerun
computes only what is new or changed.
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
from op4ksr_bench.errors import UsageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
FORMATS = ("table", "json", "csv")


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

    header = ("name", "kind", "better", "backend", "licence", "4K policy", "weights")
    rows = []
    for name in METRICS.names():
        metric_class = METRICS.get(name)
        missing = [file for file in metric_class.weights if not weights.is_present(file)]
        status = "-" if not metric_class.weights else ("present" if not missing else f"MISSING {', '.join(missing)}")
        licence = metric_class.licence + (" [non-commercial]" if metric_class.non_commercial else "")
        rows.append(
            (
                name,
                metric_class.kind,
                direction(metric_class),
                metric_class.backend,
                licence,
                policy_of(metric_class),
                status,
            )
        )
    print(_text_table(header, rows))
    if any(row[-1].startswith("MISSING") for row in rows):
        print("\nMissing weights: `op4ksr-bench weights list` says where each file goes and how to obtain it.")


# ---------------------------------------------------------------------------------------------------------- score


def image_files(folder: Path) -> dict[str, Path]:
    """Image files of ``folder`` by stem (not recursive). Two files with one stem are a usage error."""
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            if path.stem in found:
                raise UsageError(
                    f"{folder} holds two images named {path.stem!r} ({found[path.stem].name}, {path.name})"
                )
            found[path.stem] = path
    return found


def pair_files(pred: Path, ref: Path | None) -> list[tuple[str, Path, Path | None]]:
    """``(id, prediction, reference)`` by stem; every prediction needs a reference when ``ref`` is given."""
    predictions = image_files(pred)
    if not predictions:
        raise UsageError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {pred}")
    if ref is None:
        return [(stem, path, None) for stem, path in predictions.items()]
    references = image_files(ref)
    unpaired = [stem for stem in predictions if stem not in references]
    if unpaired:
        shown = ", ".join(unpaired[:5]) + (" ..." if len(unpaired) > 5 else "")
        raise UsageError(f"{len(unpaired)} prediction(s) have no reference with the same stem in {ref}: {shown}")
    return [(stem, path, references[stem]) for stem, path in predictions.items()]


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


def direction(metric_class) -> str:
    """``higher``, ``lower``, or ``near X`` for a metric whose best value is its ``ideal`` X (``seam``: near 0)."""
    if metric_class.ideal is not None:
        return f"near {metric_class.ideal:g}"
    return "higher" if metric_class.higher_is_better else "lower"


def metric_key(record: dict[str, Any]) -> str:
    """Cache key of a metric: the hash of its full record (name, backend, settings)."""
    return sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:24]


def score(pred: Path, ref: Path | None, metrics: str | None, fmt: str, out: Path | None, device: str) -> None:
    """Score a folder of predictions (against a folder of references) and print or write the result."""
    from op4ksr_bench.metrics.scoring import DEFAULT_METRICS, create_metrics, metric_record, score_files

    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    pairs = pair_files(Path(pred), Path(ref) if ref else None)
    if metrics is not None:
        names = [name.strip() for name in metrics.split(",") if name.strip()]
        if not names:
            raise UsageError("--metrics is empty; give comma-separated names (see `op4ksr-bench ls metrics`)")
        built, warnings = create_metrics(names, device=device)
        if ref is None:
            needing = [metric.name for metric in built if metric.kind == "FR"]
            if needing:
                raise UsageError(f"{', '.join(needing)} need references; pass --ref DIR")
    else:
        from op4ksr_bench.metrics import METRICS

        defaults = [name for name in DEFAULT_METRICS if ref is not None or METRICS.get(name).kind == "NR"]
        built, warnings = create_metrics(None, default_names=defaults, device=device)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not built:
        raise UsageError("no metric left to compute")
    records = {metric.name: metric_record(metric) for metric in built}
    keys = {name: metric_key(record) for name, record in records.items()}
    cache = ScoreCache(paths.cache_root() / "scores")
    per_image = []
    started = time.monotonic()
    computed = 0
    for index, (stem, pred_path, ref_path) in enumerate(pairs, start=1):
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
        row: dict[str, Any] = {"id": stem}
        for metric in built:
            row.update(entries[keys[metric.name]])
        per_image.append(row)
        _progress(index, len(pairs), started, stem, cached=not todo)
    if computed < len(pairs):
        print(f"{len(pairs) - computed} of {len(pairs)} image(s) came from the cache", file=sys.stderr)
    value_keys = [key for key in per_image[0] if key != "id"]
    mean = {key: _aggregate(per_image, key, statistics.fmean) for key in value_keys}
    median = {key: _aggregate(per_image, key, statistics.median) for key in value_keys}
    settings = {
        "pred": str(pred),
        "ref": str(ref) if ref else None,
        "device": device,
        "op4ksr_bench": __version__,
        "metrics": list(records.values()),
    }
    text = _render(fmt, per_image, mean, median, settings, [metric.name for metric in built])
    if out is not None:
        atomic_write_text(Path(out), text)
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def _aggregate(rows: list[dict[str, Any]], key: str, reduce) -> float | None:
    values = [row.get(key) for row in rows if row.get(key) is not None]
    return float(reduce(values)) if values else None


def _progress(done: int, total: int, started: float, stem: str, cached: bool) -> None:
    elapsed = time.monotonic() - started
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else 0.0
    note = " (cached)" if cached else ""
    print(f"[{done}/{total}] {stem}{note}  {rate:.2f} img/s  ETA {eta:.0f}s", file=sys.stderr)


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
    mean: dict[str, float | None],
    median: dict[str, float | None],
    settings: dict[str, Any],
    headline: list[str],
) -> str:
    if fmt == "json":
        document = {"per_image": per_image, "mean": mean, "median": median, "settings": settings}
        return json.dumps(document, indent=2) + "\n"
    if fmt == "csv":
        keys = [key for key in per_image[0] if key != "id"]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["id", *keys])
        for row in per_image:
            writer.writerow([row["id"], *("" if row.get(key) is None else repr(row[key]) for key in keys)])
        writer.writerow(["mean", *("" if mean[key] is None else repr(mean[key]) for key in keys)])
        writer.writerow(["median", *("" if median[key] is None else repr(median[key]) for key in keys)])
        return buffer.getvalue()
    rows = [(row["id"], *(_format_value(row.get(name)) for name in headline)) for row in per_image]
    rows.append(("mean", *(_format_value(mean.get(name)) for name in headline)))
    rows.append(("median", *(_format_value(median.get(name)) for name in headline)))
    return _text_table(("id", *headline), rows) + "\n"


def _text_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines += [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)
