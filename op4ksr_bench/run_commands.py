"""The ``run`` and ``merge`` commands: parse the command line, pick the suites, run each, print the summary.

The work itself is :func:`op4ksr_bench.runner.run_suite` (and :func:`op4ksr_bench.results.merge_runs`); this
module turns ``--shard``, ``--ids``, ``--metrics``, ``--device`` into its arguments and its outcomes into lines
and an exit code (1 if any image failed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from op4ksr_bench.errors import UsageError
from op4ksr_bench.methods.factory import create_method, parse_options
from op4ksr_bench.paths import data_dir, results_dir
from op4ksr_bench.results import merge_runs
from op4ksr_bench.runner import resolve_suites, run_suite, select_entries, without_ground_truth


def parse_shard(text: str | None, environ: dict[str, str] | None = None) -> tuple[int, int] | None:
    """``"1/4"`` -> ``(1, 4)``; without ``--shard``, ``RANK``/``WORLD_SIZE`` (torchrun, accelerate) if set.

    Raises:
        UsageError: malformed or out-of-range shard.
    """
    environ = os.environ if environ is None else environ
    if text is None:
        world = environ.get("WORLD_SIZE")
        if world is None or int(world) <= 1:
            return None
        text = f"{environ.get('RANK', '0')}/{world}"
    index_text, sep, count_text = text.partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise UsageError(f"--shard {text!r} is not I/N (e.g. 0/4)") from None
    if not sep or count < 1 or not 0 <= index < count:
        raise UsageError(f"--shard {text!r}: need 0 <= I < N")
    return index, count


def parse_ids(text: str | None) -> list[str] | None:
    """``"a,b,enl-*"`` -> ``["a", "b", "enl-*"]`` (ids or shell-style globs); None or empty -> None."""
    if text is None:
        return None
    patterns = [part.strip() for part in text.split(",") if part.strip()]
    if not patterns:
        raise UsageError(f"--ids {text!r} names no image id; give ids or globs separated by commas (a,b,enl-*)")
    return patterns


def check_ids(suites: list, patterns: list[str] | None) -> None:
    """Every ``--ids`` pattern must match an image of at least one selected suite.

    Raises:
        UsageError: a pattern matches nothing (the message lists some ids of the suites).
    """
    if not patterns:
        return
    for pattern in patterns:
        if not any(select_entries(built.entries, [pattern]) for built in suites):
            known = [entry["id"] for built in suites for entry in built.entries]
            shown = ", ".join(known[:8]) + (f", ... ({len(known)} in all)" if len(known) > 8 else "")
            names = ", ".join(built.spec.name for built in suites)
            raise UsageError(f"--ids: {pattern!r} matches no image of {names}; ids are: {shown}")


def cli_run(
    *,
    method: str,
    suite: str,
    data: Path | None,
    results: Path | None,
    metrics: str | None,
    opts: list[str],
    device: str,
    dtype: str,
    seed: int,
    limit: int | None,
    shard: str | None,
    ids: str | None = None,
    fresh: bool = False,
) -> None:
    """The ``run`` command: every selected suite, then a summary; exit code 1 if any image failed."""
    import torch

    def echo(line: str) -> None:
        typer.echo(line, err=True)

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available here; use --device cpu")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit {limit} must be at least 1")
    options = parse_options(opts)
    metric_names = [name.strip() for name in metrics.split(",") if name.strip()] if metrics else None
    shard_spec = parse_shard(shard)
    if device == "cuda" and os.environ.get("LOCAL_RANK") is not None:
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"  # torchrun / accelerate: one GPU per process
    suites = resolve_suites(suite, Path(data) if data else data_dir(), echo)
    patterns = parse_ids(ids)
    check_ids(suites, patterns)
    for built in list(suites):
        refused = without_ground_truth(built, metric_names or [])
        if metric_names and len(refused) == len(metric_names):
            if suite == "all":
                echo(f"warning: skipping {built.spec.name}: it has no ground truth for {','.join(refused)}")
                suites.remove(built)
                continue
            raise UsageError(
                f"--metrics {','.join(refused)}: full-reference metrics need ground truth and suite "
                f"{built.spec.name} has none; ask for no-reference metrics ({', '.join(built.spec.metrics[:4])}, ...)"
            )
    if not suites:
        raise UsageError(f"--metrics {metrics}: no selected suite has the ground truth these metrics need")
    methods: dict[int, Any] = {}
    outcomes = []
    for built in suites:
        scale = int(built.spec.scale)
        if scale not in methods:
            try:
                methods[scale] = create_method(method, scale=scale, device=device, dtype=dtype, options=options)
            except UsageError as error:
                if suite == "all" and "supports scale" in str(error):
                    echo(f"warning: skipping {built.spec.name} (x{scale}): {error}")
                    continue
                raise
        outcome = run_suite(
            built, methods[scale], spec=method, user_options=options, metric_names=metric_names,
            results_root=Path(results) if results else results_dir(), device=device, dtype=dtype, seed=seed,
            limit=limit, shard=shard_spec, echo=echo, ids=patterns, fresh=fresh,
        )  # fmt: skip
        outcomes.append(outcome)
    failed = 0
    for outcome in outcomes:
        means = ", ".join(
            f"{name} {value['mean']:.4g}" for name, value in outcome.summary.items() if value.get("mean") is not None
        )
        typer.echo(
            f"{outcome.suite}: {outcome.ok} ok, {outcome.failed} failed, {outcome.resumed} resumed -> {outcome.folder}"
        )
        if means:
            typer.echo(f"  {means}")
        for image_id, reason in outcome.failures:
            typer.echo(f"  failed {image_id}: {reason}")
        failed += outcome.failed
    if failed:
        raise typer.Exit(code=1)


def cli_merge(*, runs: list[Path], out: Path | None) -> None:
    """The ``merge`` command: join shard run folders into one run."""
    try:
        merged = merge_runs(list(runs), out)
    except ValueError as error:
        raise UsageError(str(error)) from error
    typer.echo(f"merged {len(runs)} shards -> {merged}")
