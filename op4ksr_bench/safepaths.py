"""Paths and numbers that come from files other people wrote: image ids, result rows, cards, site links.

Result folders, suites, weight files and method cards travel between people (see ``docs/security.md``). Every
name or relative path read from one of them goes through this module before it touches the file system:

* :func:`check_image_id`: an image id is a file-name stem (``images/<id>.png``), so it matches
  :data:`IMAGE_ID_PATTERN`: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit, no ``..``.
* :func:`resolve_inside`: a relative path from a file resolves inside its own folder and is never followed
  through a symbolic link (a link anywhere below the folder is refused, even one pointing back inside).
* :func:`copy_verified`: a file is copied (never linked) into a folder through a temporary file, hashed on the
  way, and renamed into place only when its sha256 is the recorded one.
* :func:`site_link`: a relative link for a generated page cannot be read as a URL scheme (``javascript:``).
* :func:`displayable`: a number from a result file is shown only when it is finite and not absurdly large.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import urllib.parse
from pathlib import Path, PurePosixPath

from op4ksr_bench.atomic import copy_hashing
from op4ksr_bench.errors import Op4ksrError

IMAGE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
"""Image ids: no separators, no leading dot, at most 200 characters (``..`` is refused separately)."""

DISPLAY_LIMIT = 1e15
"""Largest magnitude the leaderboard shows; larger values (1e308, overflowing sums) are shown as ``-``."""


class UnsafePathError(Op4ksrError, ValueError):
    """A name or path read from a file would leave its folder, follow a link, or is not a plain name.

    It is a ``ValueError`` too, so code that reports malformed result files reports it the same way.
    """


def image_id_problem(image_id: object) -> str | None:
    """Why ``image_id`` cannot be an image id (None when it can)."""
    if not isinstance(image_id, str):
        return f"image id {image_id!r} is a {type(image_id).__name__}, not a string"
    if not IMAGE_ID_PATTERN.match(image_id) or ".." in image_id:
        return (
            f"image id {image_id!r} is not a plain name (letters, digits, '.', '_', '-'; starting with a letter or "
            "digit; no '..'; at most 200 characters)"
        )
    return None


def check_image_id(image_id: object, where: str, error: type[Exception] = UnsafePathError) -> str:
    """``image_id`` if it matches :data:`IMAGE_ID_PATTERN`; else raise ``error`` naming ``where``."""
    problem = image_id_problem(image_id)
    if problem:
        raise error(f"{where}: {problem}")
    return str(image_id)


def resolve_inside(root: Path, relative: object, where: str) -> Path:
    """``root / relative``, checked: relative POSIX path, no ``..``, inside ``root``, no symbolic link on the way.

    The final component may not exist yet (a file about to be written); every existing component below
    ``root`` must be a real folder or file, not a link.

    Raises:
        UnsafePathError: naming ``where`` and the path.
    """
    if not isinstance(relative, str) or not relative or "\x00" in relative or "\\" in relative:
        raise UnsafePathError(f"{where}: path {relative!r} is not a relative path")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts or relative.startswith("~"):
        raise UnsafePathError(f"{where}: path {relative!r} must be relative and stay inside its folder {root}")
    root = Path(root)
    current = root
    for part in pure.parts:
        current = current / part
        if current.is_symlink():
            raise UnsafePathError(f"{where}: path {relative!r} goes through the symbolic link {current}; refused")
    try:
        current.resolve().relative_to(root.resolve())
    except ValueError:
        raise UnsafePathError(f"{where}: path {relative!r} escapes {root}") from None
    return current


def copy_verified(source: Path, destination: Path, sha256: str | None, where: str) -> None:
    """Copy ``source`` to ``destination`` through a temporary file beside it; rename only if the sha256 matches.

    ``destination`` is replaced atomically (a link there is replaced, never written through); a mismatch
    leaves it as it was.

    Raises:
        UnsafePathError: ``source`` is not a regular file, or its bytes do not hash to ``sha256``.
    """
    source, destination = Path(source), Path(destination)
    if source.is_symlink() or not source.is_file():
        raise UnsafePathError(f"{where}: {source} is not a regular file")
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise UnsafePathError(f"{where}: {source} has no recorded sha256 to check it against")
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".tmp-{destination.name}-", dir=destination.parent)
    try:
        digest = copy_hashing(source, fd)
        if digest != sha256:
            raise UnsafePathError(
                f"{where}: {source} has sha256 {digest[:12]}..., the results record {sha256[:12]}...; "
                "the file was altered: rerun that image"
            )
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def site_link(relative: str) -> str:
    """A relative link for a generated page that a browser cannot read as a URL scheme or a fragment.

    Characters a URL path may not hold (space, ``#``, ``?``, ``%``, non-ASCII) are percent-encoded, and a path
    whose first segment holds a ``:`` (``javascript:alert(1)/run.json``) gets a leading ``./``. Other paths come
    back unchanged.
    """
    quoted = urllib.parse.quote(Path(relative).as_posix(), safe="/@+=,!$&'()*;:")
    if ":" in quoted.split("/", 1)[0]:
        quoted = "./" + quoted
    return quoted


def is_number(value: object) -> bool:
    """True for an ``int`` or ``float`` that is not a ``bool``."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def displayable(value: object, limit: float = DISPLAY_LIMIT) -> bool:
    """True for a finite number no larger in magnitude than ``limit``."""
    if not is_number(value):
        return False
    try:
        return math.isfinite(value) and abs(value) <= limit
    except OverflowError:  # an int too large for a float
        return False
