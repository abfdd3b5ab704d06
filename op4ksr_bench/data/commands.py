"""CLI bodies of ``ls suites``, ``build-dataset``, ``validate`` and ``export`` (printed through ``console``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from op4ksr_bench.console import RichProgress, text_table
from op4ksr_bench.errors import ManifestError, UsageError
from op4ksr_bench.paths import data_dir as default_data_dir


def _data(data: Path | None) -> Path:
    return Path(data).expanduser() if data else default_data_dir()


def ls_suites(data: Path | None) -> None:
    """Table of the defined suites and whether each is built in the data folder."""
    import json

    from op4ksr_bench.data.suites import load_suite_spec, suite_names, suites_dir

    folder = _data(data)
    rows: list[tuple[str, ...]] = []
    for name in suite_names():
        spec = load_suite_spec(name)
        info_path = folder / name / "suite.json"
        if info_path.is_file():
            info = json.loads(info_path.read_text())
            built = f"yes: {info['count']} images, {info.get('variant')}, hash {str(info.get('hash'))[:12]}"
        else:
            built = "no"
        rows.append((
            name, str(spec.version), spec.task, f"x{spec.scale}", spec.variant,
            str(spec.count if spec.count is not None else "all"), str(len(spec.metrics)), built,
        ))  # fmt: skip
    import yaml

    from op4ksr_bench.data.custom import built_suite_names
    from op4ksr_bench.data.suites import SuiteSpec

    for name in built_suite_names(folder):
        if name in suite_names():
            continue
        try:
            path = folder / name / "suite.yaml"
            spec = SuiteSpec.from_mapping(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
            info = json.loads((folder / name / "suite.json").read_text())
        except (OSError, ValueError, UsageError, yaml.YAMLError) as error:
            rows.append((name, "?", "?", "?", "?", "?", "?", f"unreadable: {error}"))
            continue
        built = f"yes: {info.get('count')} images, {info.get('variant')}, hash {str(info.get('hash'))[:12]} (custom)"
        rows.append((
            name, str(spec.version), spec.task, f"x{spec.scale}", spec.variant, str(info.get("count")),
            str(len(spec.metrics)), built,
        ))  # fmt: skip
    print(f"suites in {suites_dir()} (data: {folder})")
    print(text_table(("suite", "version", "task", "scale", "variant", "images", "metrics", "built"), rows))


def build_dataset(
    suite: str,
    sources: list[str],
    data: Path | None,
    limit: int | None,
    seed: int | None,
    workers: int,
    force: bool,
    div4k: Path | None,
    name: str | None = None,
    spec_file: Path | None = None,
) -> None:
    """Build (or import) suites; prints a summary with images per minute."""
    from op4ksr_bench.data.builder import BuildResult, build_pool, is_built
    from op4ksr_bench.data.suites import DEFAULT_SUITES, expand_suite_argument, load_suite_spec, suite_names

    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1")
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    folder = _data(data)
    folder.mkdir(parents=True, exist_ok=True)
    if name is not None or spec_file is not None:
        if div4k is not None:
            raise UsageError("--div4k imports suite div4k-50; it does not combine with --name or --spec")
        build_custom(suite, sources, folder, limit, seed, workers, force, name, spec_file)
        return
    names = [] if (div4k is not None and suite == "all") else expand_suite_argument(suite)
    if "div4k-50" in names and div4k is None:
        raise UsageError("div4k-50 is imported from a local copy of DIV4K-50: pass --div4k DIR")
    names = [name for name in names if name != "div4k-50"]
    results: list[BuildResult] = []
    started = time.monotonic()
    with RichProgress() as progress:
        if div4k is not None:
            from op4ksr_bench.data.div4k import import_div4k

            spec = load_suite_spec("div4k-50")
            results.append(import_div4k(Path(div4k), folder, spec, force, progress))
        pools: dict[str, list[str]] = {}
        for name in names:
            spec = load_suite_spec(name)
            pools.setdefault(str(spec.source.get("pool") or name), []).append(name)
        for pool, wanted in pools.items():
            members = [load_suite_spec(other) for other in suite_names()]
            members = [spec for spec in members if str(spec.source.get("pool") or spec.name) == pool]
            members = [_override(spec, spec.name in wanted, sources, limit, seed) for spec in members]
            to_build = [name for name in wanted if force or not is_built(folder, name)]
            for name in wanted:
                if name not in to_build:
                    progress.log(f"{name}: already built in {folder}; pass --force to rebuild it")
                    results.append(BuildResult(name, "skipped", 0, 0.0, folder / name))
            if not to_build:
                continue
            source_specs = list(members[0].source.get("specs") or ["debian"])
            results.extend(build_pool(members, to_build, source_specs, folder, limit, workers, progress))
    _report(results, folder, started)
    if suite == "all" and div4k is None:
        missing = [name for name in DEFAULT_SUITES if not is_built(folder, name)]
        if missing:
            raise ManifestError(f"suites not built: {missing}")


def _report(results, folder: Path, started: float) -> None:
    """Print one line per suite and the total; fail when a benchmark image leaks from the training set."""
    from op4ksr_bench.data.leakage import leakage_problems

    problems = leakage_problems(folder)
    total = time.monotonic() - started
    for result in results:
        rate = f"{result.count / (result.seconds / 60):.1f} images/min" if result.seconds > 0 else ""
        reused = f", {result.reused} reused from an interrupted build" if result.reused else ""
        print(f"{result.name}: {result.status}, {result.count} images{reused} {rate}".rstrip())
    built = sum(result.count for result in results if result.status != "skipped")
    if built:
        print(f"total: {built} images in {total:.1f} s ({built / (total / 60):.1f} images/min), data in {folder}")
    if problems:
        for line in problems:
            print(f"leakage: {line}")
        raise ManifestError(f"{len(problems)} benchmark images leak from the training set (listed above)")


def build_custom(
    suite: str,
    sources: list[str],
    folder: Path,
    limit: int | None,
    seed: int | None,
    workers: int,
    force: bool,
    name: str | None,
    spec_file: Path | None,
) -> None:
    """``build-dataset --name NAME`` / ``--spec FILE``: one suite under its own name (see :mod:`.custom`)."""
    from op4ksr_bench.data.builder import BuildResult, build_pool, is_built
    from op4ksr_bench.data.custom import (
        PAIRS_PREFIX,
        check_name,
        check_pairs,
        import_pairs,
        load_spec_file,
        named_spec,
        pairs_spec,
        parse_pairs,
    )
    from op4ksr_bench.data.suites import load_suite_spec, suite_names

    pairs = [source for source in sources if source.startswith(PAIRS_PREFIX)]
    if pairs and len(sources) != 1:
        raise UsageError("--source pairs:LR_DIR,HR_DIR is the only source of a paired suite; give it alone")
    if spec_file is not None:
        spec = load_spec_file(spec_file)
        if name is not None:
            spec = spec.with_overrides(name=check_name(name))
        if sources:
            spec = spec.with_overrides(source={**spec.source, "specs": list(sources)})
    elif pairs:
        lr_dir, hr_dir = parse_pairs(pairs[0])
        _, scale, problems = check_pairs(lr_dir, hr_dir)
        if not scale:
            raise ManifestError(f"pairs {lr_dir} + {hr_dir}: {'; '.join(problems[:3])}")
        spec = pairs_spec(check_name(str(name)), lr_dir, hr_dir, scale)
    else:
        if not sources:
            raise UsageError("--name builds from your own images: add --source folder:PATH (or pairs:LR_DIR,HR_DIR)")
        template = load_suite_spec("4ksr-syn" if suite == "all" else suite)
        if template.task not in ("synthetic", "real"):
            raise UsageError(f"--suite {template.name} is a {template.task} suite; --name copies a synthetic/real one")
        spec = named_spec(template, check_name(str(name)), sources)
    if spec.name in suite_names():
        raise UsageError(f"suite {spec.name!r} is defined in datasets/; choose another --name for your own suite")
    started = time.monotonic()
    results: list[BuildResult] = []
    with RichProgress() as progress:
        if spec.task == "paired":
            results.append(import_pairs(spec, folder, force, progress))
        elif is_built(folder, spec.name) and not force:
            progress.log(f"{spec.name}: already built in {folder}; pass --force to rebuild it")
            results.append(BuildResult(spec.name, "skipped", 0, 0.0, folder / spec.name))
        else:
            spec = _override(spec, True, [], limit, seed)
            source_specs = list(spec.source.get("specs") or ["debian"])
            results.extend(build_pool([spec], [spec.name], source_specs, folder, limit, workers, progress))
    _report(results, folder, started)
    print(f"run it with: op4ksr-bench run --data {folder} --suite {spec.name} --method METHOD")


def _override(spec, wanted: bool, sources: list[str], limit: int | None, seed: int | None):
    changes: dict[str, Any] = {}
    if sources:
        source = dict(spec.source)
        source["specs"] = list(sources)
        changes["source"] = source
    if limit is not None:
        changes["count"] = limit if spec.count is None else min(spec.count, limit)
    if seed is not None and wanted:
        changes["seed"] = seed
    return spec.with_overrides(**changes) if changes else spec


def validate(suite: str, data: Path | None) -> None:
    """Re-hash every file of the named (or all built) suites; exit 1 naming each problem."""
    from op4ksr_bench.data.leakage import leakage_problems
    from op4ksr_bench.data.manifest import validate_suite
    from op4ksr_bench.data.suites import load_suite_spec, suite_names

    folder = _data(data)
    if suite == "all":
        from op4ksr_bench.data.custom import built_suite_names

        names = [name for name in suite_names() if (folder / name / "suite.json").is_file()]
        names += [name for name in built_suite_names(folder) if name not in names]
        if not names:
            raise ManifestError(f"no suite is built in {folder}; run `op4ksr-bench build-dataset --suite all`")
    else:
        from op4ksr_bench.data.custom import is_built_here

        names = [item.strip() for item in suite.split(",") if item.strip()]
        for name in names:
            if not is_built_here(folder, name):  # a custom suite is defined by its data folder's suite.yaml
                load_suite_spec(name)
    problems = []
    for name in names:
        found = validate_suite(folder, name)
        problems.extend(found)
        print(f"{name}: {'ok' if not found else f'{len(found)} problems'}")
    leaks = leakage_problems(folder)
    problems.extend(f"leakage: {line}" for line in leaks)
    for line in problems:
        print(line)
    if problems:
        raise ManifestError(f"validate: {len(problems)} problems in {folder} (listed above)")


def export(suite: str, out: Path, data: Path | None) -> None:
    """Export a built suite as a Hugging Face dataset folder."""
    from op4ksr_bench.data.export import export_suite

    target = export_suite(_data(data), suite, Path(out))
    print(f"{suite}: exported to {target} (load with datasets.load_from_disk)")
