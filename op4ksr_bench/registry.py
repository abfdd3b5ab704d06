"""One small generic registry with explicit, lazy entries.

Entries are registered as ``"module:attribute"`` strings so that listing names never imports torch or a
model backend; the object is imported the first time it is asked for. Unknown names raise a
:class:`~op4ksr_bench.errors.UsageError` with "did you mean" suggestions.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from op4ksr_bench.errors import UsageError

T = TypeVar("T")
_REQUIRED: Any = object()


class Registry(Generic[T]):
    """An ordered name -> object map whose values may be lazy ``"module:attribute"`` references.

    Args:
        kind: What the registry holds, used in error messages ("method", "metric", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}

    def register(self, name: str, target: T | str) -> None:
        """Add ``name``; ``target`` is the object or a ``"module:attribute"`` string imported on first use."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = target

    def names(self) -> list[str]:
        """Registered names in registration order, without importing anything."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str, default: Any = _REQUIRED) -> T:
        """Return the object for ``name``, importing it if it was registered lazily.

        Args:
            name: A registered name.
            default: Returned for an unregistered name (mapping style); without it such a name raises.

        Raises:
            UsageError: ``name`` is not registered and no default is given; the message lists the closest names.
        """
        if name not in self._entries:
            if default is not _REQUIRED:
                return default
            raise UsageError(self.unknown_message(name))
        target = self._entries[name]
        if isinstance(target, str):  # resolved on every call (imports are cached by Python): the registry never changes
            module_name, _, attribute = target.partition(":")
            return getattr(importlib.import_module(module_name), attribute)
        return target

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __setitem__(self, name: str, target: T | str) -> None:
        """Replace or add an entry outright (tests substitute entries with ``monkeypatch.setitem``)."""
        self._entries[name] = target

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(self.names()) or '(none)'}."
