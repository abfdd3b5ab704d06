"""The generic registry: lazy entries, ordering and "did you mean" errors."""

from __future__ import annotations

import sys

import pytest

from op4ksr_bench.errors import UsageError
from op4ksr_bench.registry import Registry


def test_lazy_entry_imports_on_first_get():
    registry: Registry = Registry("thing")
    registry.register("ordered", "collections:OrderedDict")
    registry.register("direct", dict)
    assert registry.names() == ["ordered", "direct"]
    import collections

    assert registry.get("ordered") is collections.OrderedDict
    assert registry.get("direct") is dict


def test_lazy_entry_does_not_import_at_registration():
    registry: Registry = Registry("thing")
    registry.register("x", "op4ksr_bench_not_a_module:Nothing")
    assert "op4ksr_bench_not_a_module" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        registry.get("x")


def test_unknown_name_suggests_close_names():
    registry: Registry = Registry("method")
    for name in ("bicubic", "lanczos", "realesrgan-x4plus"):
        registry.register(name, dict)
    with pytest.raises(UsageError, match="Did you mean 'bicubic'"):
        registry.get("bicubc")


def test_duplicate_registration_is_refused():
    registry: Registry = Registry("metric")
    registry.register("psnr", dict)
    with pytest.raises(ValueError, match="twice"):
        registry.register("psnr", dict)


def test_mapping_access_substitutes_entries():
    registry: Registry = Registry("weight file")
    registry.register("a", "collections:OrderedDict")
    assert registry.get("missing", None) is None
    registry["a"] = dict
    registry["b"] = list
    assert registry["a"] is dict and registry.names() == ["a", "b"]
    del registry["b"]
    assert "b" not in registry


def test_empty_registry_says_so():
    with pytest.raises(UsageError, match=r"Known: \(none\)"):
        Registry("suite").get("x")
