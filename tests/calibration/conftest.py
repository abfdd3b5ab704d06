"""Weight files for the learned metrics, generated with the right keys and shapes (random values) in the
temporary TORCH_HOME that tests/conftest.py sets up. Large tensors are stored as one row broadcast to the full
shape, so the files stay small while loading exercises the real code."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from op4ksr_bench import weights
from op4ksr_bench.weights import fetchers as weight_fetchers


def compact(state_dict: dict[str, torch.Tensor], limit: int = 1_000_000) -> dict[str, torch.Tensor]:
    """Keep small tensors; store a large one as its first row broadcast to its shape (tiny on disk)."""
    result = {}
    for key, tensor in state_dict.items():
        tensor = tensor.detach().cpu()
        if tensor.is_floating_point() and tensor.numel() > limit and tensor.ndim > 1:
            row = tensor.reshape(-1)[: tensor.shape[-1]].clone()
            result[key] = row.expand(tensor.shape)
        else:
            result[key] = tensor.clone()
    return result


class _Holder(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def torchscript_holder(state: dict[str, torch.Tensor]) -> torch.jit.ScriptModule:
    """A TorchScript module whose state dict is ``state`` (nested modules follow the dotted keys)."""
    root = _Holder()
    for key, value in state.items():
        *parents, leaf = key.split(".")
        module = root
        for part in parents:
            if not hasattr(module, part):
                module.add_module(part, _Holder())
            module = getattr(module, part)
        module.register_buffer(leaf, value)
    return torch.jit.script(root)


def destination(name: str) -> Path:
    path = weights.weight_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def make_torchvision(name: str) -> Path:
    import torchvision

    torch.manual_seed(0)
    builder = {"torchvision-alexnet": torchvision.models.alexnet, "torchvision-vgg16": torchvision.models.vgg16}[name]
    path = destination(name)
    torch.save(compact(builder(weights=None).state_dict()), path)
    return path


def make_niqe() -> Path:
    rng = np.random.default_rng(0)
    mu = rng.uniform(0.2, 3.0, (1, 36))
    basis = rng.standard_normal((36, 36)) * 0.1
    cov = basis @ basis.T + 0.05 * np.eye(36)
    path = destination("niqe-pris-params")
    path.write_bytes(weight_fetchers.niqe_mat_bytes(mu, cov))
    return path


def make_pyiqa(name: str) -> Path:
    """Build the pyiqa architecture untrained (offline) and save its state dict as pyiqa's file would hold it."""
    from op4ksr_bench.metrics.learned import offline_loading

    torch.manual_seed(0)
    path = destination(name)
    with offline_loading():
        if name == "dists":
            from pyiqa.archs.dists_arch import DISTS

            model = DISTS(pretrained=False)
            torch.save({"alpha": model.alpha.detach().clone(), "beta": model.beta.detach().clone()}, path)
            return path
        if name == "musiq-koniq":
            from pyiqa.archs.musiq_arch import MUSIQ

            torch.save(compact(MUSIQ(pretrained=False).state_dict()), path)
        elif name == "maniqa-koniq":
            from pyiqa.archs.maniqa_arch import MANIQA

            torch.save(compact(MANIQA(train_dataset="koniq", scale=0.8, pretrained=False).state_dict()), path)
        elif name == "topiq-nr-koniq":
            from pyiqa.archs.topiq_arch import CFANet

            model = CFANet(
                semantic_model_name="resnet50", model_name="cfanet_nr_koniq_res50", use_ref=False, pretrained=False
            )
            torch.save({"params": compact(model.state_dict())}, path)
        elif name == "clip-rn50":
            from pyiqa.archs.clip_model import CLIP

            model = CLIP(1024, 224, (3, 4, 6, 3), 64, None, 77, 49408, 512, 8, 12)
            state = compact(model.state_dict())
            state.update({"input_resolution": torch.tensor(224), "context_length": torch.tensor(77)})
            state["vocab_size"] = torch.tensor(49408)
            torch.jit.save(torchscript_holder(state), str(path))  # OpenAI's RN50.pt is a TorchScript archive
        else:
            raise ValueError(name)
    return path


@pytest.fixture
def weight_files(monkeypatch):
    """Create the generated weight files of the named catalogue entries (and their backbones).

    Metrics check each file's sha256 when they load it; the catalogue entries carry the generated files' hashes
    in place of the published ones for the test's duration.
    """

    def create(*names: str) -> dict[str, Path]:
        made = {}
        for name in names:
            if name.startswith("torchvision-"):
                made[name] = make_torchvision(name)
            elif name == "niqe-pris-params":
                made[name] = make_niqe()
            else:
                made[name] = make_pyiqa(name)
        for name, path in made.items():
            generated = dataclasses.replace(weights.entry(name), sha256=weights.sha256_file(path), size=None)
            monkeypatch.setitem(weights.CATALOGUE, name, generated)
        return made

    return create


def debian_photos(*members: tuple[str, str]) -> list[np.ndarray]:
    """Real photographs from the Debian packages of the data catalogue (downloaded once into the shared download
    cache): ``members`` are ``(package, file name)`` pairs; returns ``uint8`` RGB arrays."""
    from op4ksr_bench.data.debian import CATALOGUE, DebianSource, Package
    from op4ksr_bench.imageio import read_image

    packages = []
    for package_name, file_name in members:
        package = next(package for package in CATALOGUE if package.name == package_name)
        photo = next(photo for photo in package.photos if photo.member.rsplit("/", 1)[-1] == file_name)
        packages.append(Package(package.name, package.id_prefix, (photo,)))
    items = {item.original_path.rsplit("/", 1)[-1]: item for item in DebianSource(tuple(packages)).list_images()}
    return [read_image(items[file_name].path) for _, file_name in members]


def tid2013_folder() -> Path:
    """The five TID2013 pairs pyiqa's wheel installs beside the package (``ResultsCalibra/{ref,dist}_dir``)."""
    import importlib.util

    spec = importlib.util.find_spec("pyiqa")
    folder = Path(spec.origin).parent.parent / "ResultsCalibra"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing: the pyiqa wheel installs it; reinstall pyiqa")
    return folder


@pytest.fixture
def load_debian_photos():
    """:func:`debian_photos` as a fixture."""
    return debian_photos


@pytest.fixture
def tid2013_pair():
    """``pair(name) -> (distorted, reference)`` of the TID2013 calibration images, ``uint8`` RGB."""
    from op4ksr_bench.imageio import read_image

    folder = tid2013_folder()

    def pair(name: str) -> tuple[np.ndarray, np.ndarray]:
        return read_image(folder / "dist_dir" / f"{name}.bmp"), read_image(folder / "ref_dir" / f"{name}.bmp")

    return pair
