"""No machine-local path on the published site.

``run.json`` keeps the full paths a run used (a ``spandrel:/root/x.pth`` spec, a ``weights`` option, a failure
reason naming a ``command.log``); the pages show them reduced: a path inside the results folder becomes
relative to it, any other absolute or home-relative path becomes its last component (``spandrel:x.pth``).
:func:`redact` applies that to every string of a JSON-like value, so the report works on redacted copies of
``run.json`` and ``samples.jsonl`` and never shows a local path, whatever field it sits in.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

# An absolute POSIX path of two or more components (/x/y, also right after "spec:"), a home path (~/x) or a
# Windows drive path (C:\x).
# Not inside words or numbers ("img/min", "2048/256"), and not a URL ("https://host/x": its "//" is skipped,
# and the path after the host follows a word character).
_PATH = re.compile(
    r"(?<![\w/.~\\<-])"
    r"(?:~[/\\]|/(?=[^\s/<>]+/)|[A-Za-z]:\\)"
    r"[^\s'\"<>,;:()\[\]{}|*?]+"
)


def looks_like_path(value: Any) -> bool:
    """Whether ``value`` is a string holding a machine-local path."""
    return isinstance(value, str) and _PATH.search(value) is not None


def _reduce(path: str, results: str | None) -> str:
    if results and (path == results or path.startswith(results.rstrip("/") + "/")):
        return path[len(results.rstrip("/")) :].lstrip("/") or "."
    windows = re.match(r"[A-Za-z]:\\", path) is not None
    name = (PureWindowsPath(path) if windows else PurePosixPath(path.replace("\\", "/"))).name
    return name or "."


def redact_text(text: str, results: str | None = None) -> str:
    """``text`` with every local path reduced (relative to ``results`` inside it, else its last component)."""
    return _PATH.sub(lambda match: _reduce(match.group(0), results), text)


def redact(value: Any, results: str | None = None) -> Any:
    """A copy of a JSON-like ``value`` with :func:`redact_text` applied to every string (keys included)."""
    if isinstance(value, str):
        return redact_text(value, results)
    if isinstance(value, dict):
        return {redact(key, results): redact(item, results) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, results) for item in value]
    return value
