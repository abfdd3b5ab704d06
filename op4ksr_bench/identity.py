"""Content-addressed run identity: what a run's id hashes, including the bytes a method reads.

A run id is ``run-`` + the first 12 hex digits of the sha256 of :func:`run_identity`: the suite hash, the
method's card name and options (less its machine-local ones), the metric settings, the seed, the device type,
the package version and, for methods that read files that can change a number, ``content``: the sha256 of
those files. So replacing one output image of a ``folder:`` method, retraining into the same ``--opt
weights=DIR`` or editing an external card gives a new run id, and a rerun never resumes numbers computed from
files that have since changed.

What each method's ``content`` covers (:func:`method_content`):

* ``folder:PATH``: every output image the folder indexes (name + sha256) and ``card.yaml``; the folder's
  absolute path is left out (the content identifies it), so the same outputs give the same id on any machine;
* ``op4ksr``: the model folder as ``OP4KSR.from_pretrained`` reads it (``op4ksr.json``,
  ``prompt_embeddings.safetensors``, ``transformer/``, ``vae/``, ``transformer_lora/``), for the shipped nano
  checkpoint as much as for ``--opt weights=DIR``; its path is left out, so the shipped checkpoint has the same
  identity in every checkout;
* ``spandrel:PATH`` and ``realesrgan-x4plus``: the weights file's sha256 is already one of the options;
* ``external:CARD``: the card file's bytes, the command template, every option value that names an existing
  file (weights, configs) and, when ``repo`` is a git checkout, its commit (``git rev-parse HEAD``);
* methods that read nothing (``bicubic``, ``lanczos``) have no ``content`` key, so their ids do not change.

Hashes of large files are remembered in ``<cache>/sha256.json`` by path, size, modification time and inode,
so a 24 GB weights folder is read once, not at every run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from pathlib import Path
from typing import Any

from op4ksr_bench import __version__

logger = logging.getLogger(__name__)

OP4KSR_READS = (
    "op4ksr.json", "prompt_embeddings.safetensors", "skip.safetensors", "transformer", "vae", "transformer_lora",
)  # fmt: skip
"""What ``OP4KSR.from_pretrained`` reads in a model folder (files, or folders read recursively)."""
CACHE_MIN_BYTES = 16 * 1024 * 1024
"""Files at least this large have their sha256 remembered in the hash cache."""


def _cache_path() -> Path:
    from op4ksr_bench.paths import cache_root

    return cache_root() / "sha256.json"


def file_sha256(path: Path) -> str:
    """sha256 of a file; large files are looked up in (and added to) the hash cache by path, size, mtime, inode."""
    from op4ksr_bench.atomic import sha256_file

    path = Path(path).resolve()
    stat = path.stat()
    if stat.st_size < CACHE_MIN_BYTES:
        return sha256_file(path)
    key = str(path)
    stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    cache_file = _cache_path()
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    entry = cache.get(key) if isinstance(cache, dict) else None
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    digest = sha256_file(path)
    try:
        from op4ksr_bench.atomic import atomic_write_bytes

        cache = cache if isinstance(cache, dict) else {}
        cache[key] = {"stamp": stamp, "sha256": digest}
        atomic_write_bytes(cache_file, json.dumps(cache, sort_keys=True, indent=1).encode("utf-8"))
    except OSError as error:  # a read-only cache only costs time
        logger.debug("cannot update the hash cache %s: %s", cache_file, error)
    return digest


def tree_sha256(files: dict[str, Path]) -> str:
    """One sha256 over ``{relative name: file}``: the sorted ``name<TAB>sha256`` lines, so names count too."""
    lines = "".join(f"{name}\t{file_sha256(path)}\n" for name, path in sorted(files.items()))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def folder_files(root: Path, members: tuple[str, ...] | None = None) -> dict[str, Path]:
    """``{relative posix name: path}`` of the files under ``root`` (only ``members`` of it, when given)."""
    root = Path(root)
    starts = [root / member for member in members] if members is not None else [root]
    found: dict[str, Path] = {}
    for start in starts:
        if start.is_file():
            found[start.relative_to(root).as_posix()] = start
        elif start.is_dir():
            for path in sorted(start.rglob("*")):
                if path.is_file():
                    found[path.relative_to(root).as_posix()] = path
    return found


def _git_commit(folder: Path) -> str | None:
    if not (folder / ".git").exists():
        return None
    try:
        completed = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() or None if completed.returncode == 0 else None


def method_content(method) -> tuple[dict[str, Any], tuple[str, ...]]:
    """What ``method`` reads that can change a number, hashed; and the option keys those hashes replace.

    Returns:
        ``(content, replaced)``: ``content`` maps what was read to its sha256 (empty for methods that read no
        files); ``replaced`` names options (machine-local paths) that the content identifies instead.
    """
    from op4ksr_bench.methods.external import ExternalMethod
    from op4ksr_bench.methods.folder import FolderMethod
    from op4ksr_bench.methods.op4ksr import Op4ksrMethod
    from op4ksr_bench.methods.tiling import TiledMethod

    if isinstance(method, TiledMethod):
        return method_content(method.inner)
    if isinstance(method, FolderMethod):
        files = {f"outputs/{path.name}": path for path in method.outputs.values()}
        card = method.folder / "card.yaml"
        if card.is_file():
            files["card.yaml"] = card
        return {"outputs": tree_sha256(files), "files": len(files)}, ("path",)
    if isinstance(method, ExternalMethod):
        content: dict[str, Any] = {
            "card": file_sha256(method.card_path),
            "command": hashlib.sha256(method.external.command.encode("utf-8")).hexdigest(),
        }
        files = {}
        for key, value in sorted(method.values.items()):
            if isinstance(value, str) and value and key != "repo":
                candidate = Path(value).expanduser()
                if candidate.is_file():
                    files[key] = file_sha256(candidate)
        if files:
            content["files"] = files
        repo = method.values.get("repo")
        commit = _git_commit(Path(str(repo)).expanduser()) if repo else None
        if commit:
            content["repo_commit"] = commit
        return content, ("card",)
    if isinstance(method, Op4ksrMethod):
        files = folder_files(Path(method.weights_folder), OP4KSR_READS)
        return {"weights": tree_sha256(files), "files": len(files)}, ("weights",)
    return {}, ()


def run_identity(*, suite_hash: str, method, metric_records: dict[str, Any], device: str, seed: int) -> dict:
    """Everything that can change a number of a run (see the module docstring); its hash is the run id."""
    content, replaced = method_content(method)
    skip = set(method.local_options) | set(replaced)
    identity = {
        "suite_hash": suite_hash,
        "method": method.card.name,  # not the spec: spandrel:PATH names a machine-local path
        "options": {key: value for key, value in method.options().items() if key not in skip},
        "device_type": device.split(":")[0],
        "metrics": {name: record.get("settings") for name, record in sorted(metric_records.items())},
        "seed": seed,
        "package_version": __version__,
    }
    if content:  # absent for methods that read no files: their run ids stay what they were
        identity["content"] = content
    return identity


def run_id(identity: dict[str, Any]) -> str:
    """``run-`` + the first 12 hex digits of the identity's canonical JSON sha256."""
    return "run-" + hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]


def older_runs_with_other_content(
    method_folder: Path, run_id_: str, spec: str, identity: dict, user_options: dict | None = None
) -> list[tuple[str, str]]:
    """Runs beside ``run_id_`` of the same spec and settings whose method inputs differ, newest first.

    Compares the ``identity`` stored in each sibling's ``run.json``: same everything but ``content``. A run
    written before identities were stored counts when its spec, ``--opt`` options, suite hash and seed are the
    same (its inputs were not recorded, so they may differ). Returns ``(run folder name, what changed)`` pairs,
    with ``""`` for what changed when the older run did not record its inputs.
    """
    if not method_folder.is_dir():
        return []
    without = {key: value for key, value in identity.items() if key != "content"}
    mine = identity.get("content") or {}
    found = []
    for path in method_folder.glob("run-*/run.json"):
        if path.parent.name == run_id_ or "-shard" in path.parent.name:
            continue
        try:
            other = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        stored = other.get("identity")
        if other.get("method", {}).get("spec") != spec:
            continue
        if not isinstance(stored, dict):
            same = (
                other.get("method", {}).get("user_options") == (user_options or {})
                and other.get("suite", {}).get("hash") == identity.get("suite_hash")
                and other.get("seed") == identity.get("seed")
            )
            if same and identity.get("content"):
                found.append((str(other.get("started_at", "")), path.parent.name, ""))
            continue
        theirs = stored.get("content") or {}
        if {key: value for key, value in stored.items() if key != "content"} != without or theirs == mine:
            continue
        changed = sorted(key for key in set(mine) | set(theirs) if mine.get(key) != theirs.get(key))
        found.append((str(other.get("started_at", "")), path.parent.name, ", ".join(changed)))
    return [(name, changed) for _, name, changed in sorted(found, reverse=True)]
