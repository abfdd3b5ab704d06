"""Specs, options and registrations: every registered method meets the contract on a small image."""

from __future__ import annotations

import pytest
import torch

from op4ksr_bench.errors import UsageError
from op4ksr_bench.methods import FAMILIES, METHODS
from op4ksr_bench.methods.factory import create_method, method_slug, parse_options, split_spec
from op4ksr_bench.methods.tiling import TiledMethod

TINY_SPAN_CHANNELS = 8
"""Width of the ``tiny_span`` fixture's export (tests/methods/conftest.py)."""


def test_options_are_yaml_scalars():
    assert parse_options(["tile=512", "blend=gaussian", "a=-0.75", "pad=true", "path=/x y", "empty="]) == {
        "tile": 512, "blend": "gaussian", "a": -0.75, "pad": True, "path": "/x y", "empty": "",
    }  # fmt: skip
    for bad, message in ((["tile"], "KEY=VALUE"), (["a=1", "a=2"], "twice"), (["a=[1, 2]"], "scalars")):
        with pytest.raises(UsageError, match=message):
            parse_options(bad)


def test_specs():
    assert split_spec("bicubic") == ("bicubic", None)
    assert split_spec("spandrel:/w/x.pth") == ("spandrel", "/w/x.pth")
    with pytest.raises(UsageError, match="needs an argument"):
        split_spec("folder:")
    with pytest.raises(UsageError, match="Did you mean 'bicubic'"):
        create_method("bicubik")


def test_unknown_option_lists_the_accepted_ones():
    with pytest.raises(UsageError, match="unknown option.*accepted: a, tile"):
        create_method("bicubic", options={"sharpness": 2})


def test_tiling_options_wrap_any_method():
    method = create_method("lanczos", options={"tile": 32, "overlap": 8, "blend": "linear", "lobes": 2})
    assert isinstance(method, TiledMethod) and method.inner.lobes == 2
    assert method_slug(method) == "lanczos+tile32-8-linear"
    with pytest.raises(UsageError, match="need --opt tile"):
        create_method("bicubic", options={"overlap": 8})


@pytest.fixture
def tiny_weights(tiny_rrdb, tiny_span, tmp_path):
    """``architecture -> path`` of tiny random weights files (no download) of the converted methods' architectures;
    their real weights are tested against ncnn in their own files."""
    from op4ksr_bench.methods.realesrgan import convert_ncnn_rrdbnet, save_state_dict
    from op4ksr_bench.methods.span import convert_ncnn_span

    layout, _, rrdb_param, rrdb_data = tiny_rrdb
    span_param, span_data = tiny_span
    states = {
        "ESRGAN": convert_ncnn_rrdbnet(rrdb_param, rrdb_data, layout),
        "SPAN": convert_ncnn_span(span_param, span_data, TINY_SPAN_CHANNELS),
    }
    paths = {}
    for architecture, state in states.items():
        paths[architecture] = tmp_path / f"tiny-{architecture}.safetensors"
        save_state_dict(paths[architecture], state, {"source": "test"})
    return paths


def contract_options(name: str, tiny_weights: dict) -> dict:
    """Options that build method ``name`` offline: a converted method gets the tiny weights of its architecture;
    every other method runs as registered (OP4KSR: the shipped nano checkpoint)."""
    from op4ksr_bench.methods.ncnn_weights import ConvertedNcnnMethod

    cls = METHODS.get(name)
    if issubclass(cls, ConvertedNcnnMethod):
        assert cls.architecture in tiny_weights, f"no tiny weights for architecture {cls.architecture!r}: add them"
        return {"weights": str(tiny_weights[cls.architecture]), "backend": "torch"}
    return {}


@pytest.mark.parametrize("name", METHODS.names())
def test_registered_methods_meet_the_contract(name, tiny_weights):
    method = create_method(name, scale=4, options=contract_options(name, tiny_weights))
    out = method.upscale(torch.rand(1, 3, 8, 6, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (1, 3, 32, 24) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert method.card.name == name and isinstance(method.options(), dict)


@pytest.mark.parametrize("family", FAMILIES.names())
def test_every_family_builds_its_arguments_from_the_spec(family):
    cls = FAMILIES.get(family)
    assert "family_arguments" in vars(cls)
    assert split_spec(f"{family}:ARG") == (family, "ARG")


def test_registry_holds_the_contract_names():
    assert {"bicubic", "lanczos", "realesrgan-x4plus", "op4ksr"} <= set(METHODS.names())
    assert {"span-x4", "span-x4-ch52", "realsr-df2k-x4", "realsr-df2k-jpeg-x4"} <= set(METHODS.names())


def test_ls_methods_lists_every_method_and_card(capsys):
    from op4ksr_bench.methods.commands import ls_methods, method_rows

    rows = {row[0]: row for row in method_rows()}
    assert {"bicubic", "lanczos", "realesrgan-x4plus", "external:stablesr", "external:hypir"} <= set(rows)
    assert rows["realesrgan-x4plus"][5] == "missing: realesrgan-x4plus"  # the test's empty OP4KSR_WEIGHTS
    for name, weights, licence in (
        ("span-x4", "span-x4-ch48", "Apache-2.0"),
        ("span-x4-ch52", "span-x4-ch52", "Apache-2.0"),
        ("realsr-df2k-x4", "realsr-df2k-x4", "Apache-2.0"),
        ("realsr-df2k-jpeg-x4", "realsr-df2k-jpeg-x4", "Apache-2.0"),
    ):
        assert rows[name][2] == licence and rows[name][5] == f"missing: {weights}"
    assert rows["bicubic"][3] == "patch-free" and rows["external:supir"][3] == "tiled 1024/512"
    ls_methods()
    assert "spandrel:PATH" in capsys.readouterr().out
