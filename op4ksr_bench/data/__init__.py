"""Data: image sources, curation filters, degradations, suite and manifest builders.

``SOURCES`` maps a source family (the text before ``:`` in ``--source FAMILY[:ARGUMENT]``) to its
:class:`~op4ksr_bench.data.sources.Source` class, lazily; adding a family is one class with ``usage`` and
``from_argument`` plus one line below.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from op4ksr_bench.errors import UsageError
from op4ksr_bench.registry import Registry

if TYPE_CHECKING:
    from op4ksr_bench.data.sources import Source

SOURCES: Registry = Registry("source")
SOURCES.register("debian", "op4ksr_bench.data.debian:DebianSource")
SOURCES.register("folder", "op4ksr_bench.data.sources:FolderSource")
SOURCES.register("hf", "op4ksr_bench.data.sources:HuggingFaceSource")


def parse_source(spec: str, cache_dir: Path) -> Source:
    """``debian`` | ``folder:PATH`` | ``hf:DATASET[:SPLIT]`` (split defaults to ``train``) -> a source.

    Raises:
        UsageError: an unknown family (listing the known spellings) or a bad argument.
    """
    family, colon, argument = spec.partition(":")
    if family == "pairs":  # not an image source: a paired suite imports its pairs as they are (data/custom.py)
        raise UsageError(f"--source {spec!r}: LR/HR pairs are imported as a suite of their own; add --name NAME")
    if family not in SOURCES:
        usages = ", ".join(SOURCES.get(name).usage for name in SOURCES.names())
        raise UsageError(f"unknown source {spec!r}; use {usages}")
    return SOURCES.get(family).from_argument(argument if colon else None, cache_dir)
