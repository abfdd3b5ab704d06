"""NIQE: `weights fetch` converts BasicSR's pristine parameters, and ``niqe-ycbcr`` on them matches BasicSR.

BasicSR's own niqe.py is read from the sdist and run here, in the test only, with stand-in parent modules
(the benchmark never imports basicsr). Needs the basicsr sdist: PyPI, or the shared download cache.
"""

from __future__ import annotations

import importlib.util
import sys
import tarfile
import types

import numpy as np
import pytest
from skimage import data as photos

from op4ksr_bench import weights
from op4ksr_bench.metrics.scoring import create_metrics
from op4ksr_bench.weights import commands as weight_commands
from op4ksr_bench.weights import fetchers as weight_fetchers

pytestmark = [pytest.mark.calibration, pytest.mark.slow]


def load_basicsr_niqe(archive, folder):
    """Import basicsr/metrics/niqe.py from the sdist with only the modules it needs (no basicsr package import)."""
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    source = next(folder.glob("basicsr-*/basicsr"))

    def load(name, relative):
        spec = importlib.util.spec_from_file_location(name, source / relative)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    saved = {name: sys.modules.get(name) for name in list(sys.modules) if name.split(".")[0] == "basicsr"}
    try:
        for name in ("basicsr", "basicsr.utils", "basicsr.metrics"):
            sys.modules[name] = types.ModuleType(name)
        color = load("basicsr.utils.color_util", "utils/color_util.py")
        sys.modules["basicsr.utils"].bgr2ycbcr = color.bgr2ycbcr
        load("basicsr.utils.matlab_functions", "utils/matlab_functions.py")
        load("basicsr.utils.registry", "utils/registry.py")
        load("basicsr.metrics.metric_util", "metrics/metric_util.py")
        return load("basicsr.metrics.niqe", "metrics/niqe.py")
    finally:
        for name in [name for name in sys.modules if name.split(".")[0] == "basicsr"]:
            del sys.modules[name]
        sys.modules.update({name: module for name, module in saved.items() if module is not None})


def test_niqe_ycbcr_on_fetched_parameters_matches_basicsr(tmp_path):
    weight_commands.cli_fetch(["niqe-pris-params"])
    assert weights.verify("niqe-pris-params")[0]
    basicsr_niqe = load_basicsr_niqe(weight_fetchers.basicsr_sdist(), tmp_path)
    metric = create_metrics(["niqe-ycbcr"])[0][0]
    # Full-size photographs agree to 5e-4. NIQE is numerically touchy: on other crops BasicSR's float32 pipeline
    # differs from its own float64 run by up to 0.06 and from pyiqa by up to 0.07 (docs/metrics/calibration.md).
    for image, tolerance in ((photos.chelsea(), 5e-4), (photos.rocket(), 5e-4), (photos.coffee(), 0.1)):
        expected = basicsr_niqe.calculate_niqe(image[:, :, ::-1].astype(np.float64), 0, input_order="HWC")
        assert metric(image)["niqe-ycbcr"] == pytest.approx(float(expected), abs=tolerance)
