"""Learned metrics: their loaders on generated weight files, and values identical to a direct backend call.

The weight files are generated (right keys and shapes, random values) in the temporary TORCH_HOME, so these
tests check the loading code and the wrapping (tiling, tensor conversion), not the published scores.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data as photos

from op4ksr_bench.errors import WeightsMissingError
from op4ksr_bench.metrics import METRICS, learned
from op4ksr_bench.metrics.scoring import create_metrics

pytestmark = pytest.mark.calibration


def tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array)).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray]:
    reference = photos.astronaut()[100:196, 150:246]
    noise = np.random.default_rng(0).integers(-20, 21, reference.shape)
    return np.clip(reference.astype(np.int32) + noise, 0, 255).astype(np.uint8), reference


@pytest.mark.parametrize("name", [name for name in METRICS.names() if METRICS.get(name).weights])
def test_missing_weights_give_one_line_naming_the_file(name):
    with pytest.raises(WeightsMissingError) as error:
        create_metrics([name])
    message = str(error.value)
    assert "\n" not in message and "missing" in message and "put " in message
    metrics, warnings = create_metrics(None, default_names=[name])
    assert metrics == [] and len(warnings) == 1


@pytest.mark.parametrize(
    ("name", "network"), [("lpips-alex", "alex"), pytest.param("lpips-vgg", "vgg", marks=pytest.mark.slow)]
)
def test_lpips_equals_the_lpips_package_with_the_same_backbone(weight_files, images, name, network):
    import lpips
    import torchvision

    made = weight_files(f"torchvision-{'alexnet' if network == 'alex' else 'vgg16'}")
    metric = create_metrics([name])[0][0]
    pred, ref = images
    value = metric(pred, ref)[name]
    # direct: torchvision loads the backbone from $TORCH_HOME/hub/checkpoints (no download: the file is there)
    builder = torchvision.models.alexnet if network == "alex" else torchvision.models.vgg16
    direct = lpips.LPIPS(net=network, verbose=False, pnet_rand=True)
    features = builder(weights=None)
    features.load_state_dict(torch.load(next(iter(made.values())), weights_only=True))
    direct.net.load_state_dict(
        {
            f"slice{stage}.{index}.{key}": tensor_value
            for stage, module in enumerate(
                (direct.net.slice1, direct.net.slice2, direct.net.slice3, direct.net.slice4, direct.net.slice5), 1
            )
            for index, _ in module.named_children()
            for key, tensor_value in features.features[int(index)].state_dict().items()
        }
    )
    with torch.no_grad():
        expected = direct.eval()(tensor(pred), tensor(ref), normalize=True).mean().item()
    assert value == pytest.approx(expected, abs=1e-6)
    assert metric(pred, ref)[name] == value  # deterministic


def pyiqa_direct(name: str, path, **options):
    import pyiqa

    from op4ksr_bench.metrics.learned import offline_loading

    with offline_loading():  # pyiqa's own default path would fetch backbones from a hub
        return pyiqa.create_metric(name, device="cpu", pretrained_model_path=str(path), **options)


def test_niqe_native_and_through_pyiqa_equal_a_direct_pyiqa_call(weight_files):
    made = weight_files("niqe-pris-params")
    image = photos.coffee()[:192, :288]
    native, through_pyiqa, ycbcr = create_metrics(["niqe", "niqe-pyiqa", "niqe-ycbcr"])[0]
    for metric, colour in ((native, "yiq"), (through_pyiqa, "yiq"), (ycbcr, "ycbcr")):
        direct = pyiqa_direct("niqe", made["niqe-pris-params"], color_space=colour)
        assert metric(image)[metric.name] == pytest.approx(direct(tensor(image)).item(), abs=1e-6)


@pytest.mark.slow
def test_dists_equals_pyiqa(weight_files, images):
    made = weight_files("torchvision-vgg16", "dists")
    metric = create_metrics(["dists"])[0][0]
    direct = pyiqa_direct("dists", made["dists"])
    pred, ref = images
    assert metric(pred, ref)["dists"] == pytest.approx(direct(tensor(pred), tensor(ref)).item(), abs=1e-6)


@pytest.mark.slow
def test_musiq_equals_pyiqa_per_tile_and_tiles_at_4k_policy(weight_files):
    made = weight_files("musiq-koniq")
    metric = create_metrics(["musiq"])[0][0]
    direct = pyiqa_direct("musiq", made["musiq-koniq"])
    image = photos.astronaut()[:96, :128]
    assert metric(image)["musiq"] == pytest.approx(direct(tensor(image)).item(), abs=1e-5)
    assert metric.settings()["policy"] == "tiled-mean" and metric.settings()["tile"] == 512


@pytest.mark.slow
def test_maniqa_equals_pyiqa_and_is_deterministic(weight_files, tmp_path):
    made = weight_files("maniqa-koniq")
    wrapped = tmp_path / "maniqa-params.pt"  # pyiqa's path option expects the weights under 'params'
    torch.save({"params": torch.load(made["maniqa-koniq"], weights_only=True)}, wrapped)
    metric = create_metrics(["maniqa"])[0][0]
    metric.model.test_sample = 1  # one crop keeps the CPU test short; the default (20) is the declared policy
    direct = pyiqa_direct("maniqa", wrapped)
    direct.net.test_sample = 1
    image = photos.astronaut()[:240, :240]
    first = metric(image)["maniqa"]
    assert first == pytest.approx(direct(tensor(image)).item(), abs=1e-5)
    assert metric(image)["maniqa"] == first


@pytest.mark.slow
def test_clipiqa_equals_pyiqa(weight_files):
    import pyiqa

    learned.ensure_clip_importable()
    made = weight_files("clip-rn50")
    metric = create_metrics(["clipiqa"])[0][0]
    direct = pyiqa.create_metric("clipiqa", device="cpu", backbone=str(made["clip-rn50"]))
    image = photos.astronaut()[:64, :64]
    assert metric(image)["clipiqa"] == pytest.approx(direct(tensor(image)).item(), abs=1e-5)


@pytest.mark.slow
def test_topiq_nr_equals_pyiqa(weight_files):
    made = weight_files("topiq-nr-koniq")
    metric = create_metrics(["topiq-nr"])[0][0]
    direct = pyiqa_direct("topiq_nr", made["topiq-nr-koniq"], backbone_pretrain=False)
    image = photos.astronaut()[:96, :96]
    assert metric(image)["topiq-nr"] == pytest.approx(direct(tensor(image)).item(), abs=1e-5)


def test_tiles_cover_the_image_deterministically():
    covered = np.zeros((1000, 1300), dtype=bool)
    for y, x, height, width in learned.tiles(1000, 1300, 512):
        covered[y : y + height, x : x + width] = True
        assert (height, width) == (512, 512)
    assert covered.all()


def test_offline_loading_refuses_downloads():
    import torch.hub

    with learned.offline_loading(), pytest.raises(WeightsMissingError, match="tried to download"):
        torch.hub.download_url_to_file("https://example.invalid/model.pth", "/tmp/never")
