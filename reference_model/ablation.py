"""Summarise benchmark runs of ablation models into one Markdown table (mean PSNR, SSIM, PAS, dominant periods).

    python -m reference_model.ablation NAME=RESULTS_DIR [NAME=RESULTS_DIR ...]

Each ``RESULTS_DIR`` is a ``--results`` folder of ``op4ksr-bench run``; every ``samples.jsonl`` below it is read.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
from pathlib import Path


def read_samples(results: Path) -> list[dict]:
    """Every successful sample row under ``results`` (all runs, all suites)."""
    rows = []
    for path in sorted(Path(results).rglob("samples.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                if row.get("status") == "ok":
                    rows.append(row)
    return rows


def summarise(named: list[tuple[str, Path]]) -> str:
    """Markdown table: one line per model with image count, mean metrics and the dominant-period counts."""
    lines = [
        "| model | images | PSNR (dB) | SSIM | PAS | PAS at 16 px | PAS at 32 px "
        "| dominant period (px: images) | s / image |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, results in named:
        rows = read_samples(results)
        if not rows:
            lines.append(f"| {name} | 0 | | | | | | | |")
            continue

        def mean(key: str, rows=rows) -> str:
            values = [row["metrics"][key] for row in rows if row["metrics"].get(key) is not None]
            return f"{statistics.fmean(values):.4g}" if values else "n/a"

        periods = collections.Counter(
            int(row["metrics"]["pas.period"]) for row in rows if "pas.period" in row["metrics"]
        )
        period_text = ", ".join(f"{period}: {count}" for period, count in sorted(periods.items())) or "n/a"
        seconds = statistics.fmean(row["seconds"] for row in rows)
        lines.append(
            f"| {name} | {len(rows)} | {mean('psnr')} | {mean('ssim')} | {mean('pas')} | {mean('pas.p16')} "
            f"| {mean('pas.p32')} | {period_text} | {seconds:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="NAME=RESULTS_DIR")
    args = parser.parse_args(argv)
    named = []
    for item in args.runs:
        name, sep, folder = item.partition("=")
        if not sep:
            print(f"error: {item!r} is not NAME=RESULTS_DIR", file=sys.stderr)
            return 2
        named.append((name, Path(folder)))
    print(summarise(named))
    return 0


if __name__ == "__main__":
    sys.exit(main())
