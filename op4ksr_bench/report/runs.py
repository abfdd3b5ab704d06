"""Result folders as the leaderboard reads them: discovery, validation, and a typed view of each run.

A run folder whose files fail schema validation (:func:`op4ksr_bench.results.load_run`) is skipped, and the
reason is kept so the page can name it. Shard runs are left out: their merged run stands for them.

Result folders are untrusted input (``docs/security.md``): every number that is not finite or is absurdly
large (:func:`op4ksr_bench.safepaths.displayable`) and every non-number where a statistic belongs is replaced
by None when the run is loaded, and :attr:`LoadedRun.notes` says what was there, so the page shows ``-`` with
that note; a run whose files break the reader in any other way is skipped with the reason.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from op4ksr_bench.report.sitepaths import redact, redact_text
from op4ksr_bench.results import SAMPLE_TIMING_FIELDS, load_run, process_start
from op4ksr_bench.safepaths import displayable, is_number

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def slugify(text: str, limit: int = 60) -> str:
    """A file-name-safe form of ``text``; a short hash is appended whenever characters had to change."""
    slug = _UNSAFE.sub("-", text).strip("-.")[:limit] or "x"
    if slug != text:
        slug += "-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:6]
    return slug


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
        raw: The ``run.json`` object as written; ``run`` and ``samples`` are copies with machine-local paths
            reduced (:mod:`op4ksr_bench.report.sitepaths`), for display. None when ``run`` is the file itself.
        notes: Values that cannot be shown, by dotted location (``summary.psnr.mean``, ``samples.img1.seconds``),
            each with what was recorded; the loaded ``run`` and ``samples`` hold None in their place.
    """

    folder: Path
    path: str
    key: str
    run: dict[str, Any]
    samples: tuple[dict[str, Any], ...]
    raw: dict[str, Any] | None = None
    notes: dict[str, str] = field(default_factory=dict)

    def note(self, location: str) -> str | None:
        """Why the value at ``location`` is not shown, or None."""
        return self.notes.get(location)

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
        """``complete``, or what is unfinished (``incomplete: 3 of 7 images pending``, ``running``,
        ``interrupted``: the run says it is running but its process is gone, see :func:`process_state`)."""
        status = str(self.run.get("status", "complete"))
        if status == "running":
            state = process_state((self.raw or self.run).get("process"))
            if state == "gone":
                status = "interrupted"
            elif state == "elsewhere":
                return "running: recorded on another machine, whose process cannot be checked from here"
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
        if not isinstance(skipped, dict):
            return {}
        return {str(k): str(v).removeprefix(f"skipping {k}: ") for k, v in skipped.items()}


def process_state(process: Any) -> str:
    """``alive``, ``gone`` or ``elsewhere`` (recorded on another host: cannot be checked from here).

    A run that says it is running but recorded no process (written before processes were recorded) counts as
    ``gone``: a live run of this package records its process before its first image.
    """
    import os
    import socket

    if not isinstance(process, dict) or not isinstance(process.get("pid"), int) or isinstance(process["pid"], bool):
        return "gone"
    if process.get("host") != socket.gethostname():
        return "elsewhere"
    pid = process["pid"]
    if pid <= 0:
        return "gone"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass  # it exists, owned by someone else
    except OSError:
        return "gone"
    recorded, current = process.get("start"), process_start(pid)
    if recorded is not None and current is not None and recorded != current:
        return "gone"  # the pid was reused by another process
    return "alive"


STATISTICS = ("mean", "median", "std", "count", "min", "max", "ci_low", "ci_high")
"""Summary fields that must be numbers (anything else there is shown as ``-`` with a note)."""
SAMPLE_NUMBERS = SAMPLE_TIMING_FIELDS  # the per-image numbers a row may hold besides its metrics


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "\u2026"


def displayable_copy(value: Any, location: str, notes: dict[str, str], numeric: bool = False) -> Any:
    """A copy of ``value`` with every number the page cannot show replaced by None (``numeric``: non-numbers too)."""
    if isinstance(value, dict):
        return {
            key: displayable_copy(item, f"{location}.{key}", notes, numeric=key in STATISTICS)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [displayable_copy(item, f"{location}.{index}", notes) for index, item in enumerate(value)]
    if is_number(value) and not displayable(value):
        notes[location] = f"the recorded value {_describe(value)} is not a finite number in range"
        return None
    if numeric and value is not None and not is_number(value):
        notes[location] = f"the recorded value {_describe(value)} is not a number"
        return None
    return value


def _displayable_run(run: dict[str, Any], samples: list[dict[str, Any]]):
    """``run`` and ``samples`` with undisplayable values replaced by None, and the notes saying what they were."""
    notes: dict[str, str] = {}
    clean = displayable_copy(run, "run", notes)
    for key in ("summary", "timing"):
        section = clean.get(key)
        if isinstance(section, dict):
            for name, entry in list(section.items()):
                if not isinstance(entry, dict):
                    notes[f"run.{key}.{name}.mean"] = f"the recorded summary {_describe(entry)} is not an object"
                    section[name] = {}
    rows = []
    for sample in samples:
        row = displayable_copy(sample, f"samples.{sample['id']}", notes)
        for key in SAMPLE_NUMBERS:
            if row.get(key) is not None and not is_number(row[key]):
                notes[f"samples.{sample['id']}.{key}"] = f"the recorded value {_describe(row[key])} is not a number"
                row[key] = None
        rows.append(row)
    return clean, rows, {key.removeprefix("run."): value for key, value in notes.items()}


def _table_problem(run: LoadedRun) -> str | None:
    """Why ``run`` alone cannot make a leaderboard table (None when it can): one odd run never aborts the site."""
    from op4ksr_bench.report.aggregate import build_tables

    try:
        build_tables([run])
    except Exception as error:  # noqa: BLE001 - any failure is this run's, reported as its skip reason
        return f"cannot be tabulated ({type(error).__name__}: {' '.join(str(error).split())[:200]})"
    return None


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
    root = str(results.resolve())
    for folder in discover(results):
        path = folder.relative_to(results).as_posix()
        try:
            links = [name for name in ("run.json", "samples.jsonl") if (folder / name).is_symlink()]
            if links:
                raise ValueError(f"{folder}: {links[0]} is a symbolic link; result files must be the files themselves")
            run, samples = load_run(folder)
            run, samples, notes = _displayable_run(run, samples)
        except ValueError as error:
            reason = redact_text(str(error).replace(str(folder), path), root)
            skipped.append(SkippedRun(path=path, reason=f"fails schema validation: {reason}"))
            logger.warning("skipping %s: %s", path, reason)
            continue
        except Exception as error:  # noqa: BLE001 - one damaged run never stops the leaderboard
            reason = f"unreadable ({type(error).__name__}: {' '.join(str(error).split())[:200]})"
            skipped.append(SkippedRun(path=path, reason=reason))
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
        ordered = tuple(sorted(redact(samples, root), key=lambda sample: sample["id"]))
        loaded = LoadedRun(
            folder=folder, path=path, key=key, run=redact(run, root), samples=ordered, raw=run, notes=notes
        )
        problem = _table_problem(loaded)
        if problem:
            skipped.append(SkippedRun(path=path, reason=redact_text(problem, root)))
            logger.warning("skipping %s: %s", path, problem)
            continue
        used_keys.add(key)
        runs.append(loaded)
    return runs, skipped
