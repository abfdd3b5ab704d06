"""Native NIQE on the command line and in the metric set: no pyiqa, no torch."""

from __future__ import annotations

import numpy as np
from skimage import data as photos


def test_score_with_niqe_does_not_import_pyiqa_or_torch(tmp_path):
    """``op4ksr-bench score --metrics niqe,seam`` on a small image runs without importing pyiqa or torch."""
    import os
    import subprocess
    import sys

    from op4ksr_bench import weights
    from op4ksr_bench.imageio import write_png
    from op4ksr_bench.weights import fetchers as weight_fetchers

    path = weights.weight_path("niqe-pris-params")
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    path.write_bytes(weight_fetchers.niqe_mat_bytes(rng.uniform(0.2, 3.0, (1, 36)), np.eye(36)))
    write_png(tmp_path / "pred" / "a.png", photos.coffee()[:192, :192])
    program = (
        "import sys\n"
        "from op4ksr_bench.cli import main\n"
        f"sys.argv = ['op4ksr-bench', 'score', '--pred', {str(tmp_path / 'pred')!r}, '--metrics', 'niqe,seam']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as end:\n"
        "    assert not end.code, end.code\n"
        "print('IMPORTED', 'pyiqa' in sys.modules, 'torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=os.environ.copy(), check=False
    )
    assert result.returncode == 0, result.stderr
    assert "niqe" in result.stdout.splitlines()[0] and "IMPORTED False False" in result.stdout


def test_niqe_refuses_flat_and_small_images_in_one_line():
    import pytest

    from op4ksr_bench.errors import ImageError
    from op4ksr_bench.metrics import niqe

    mu, cov = np.ones(36), np.eye(36)
    with pytest.raises(ImageError, match="flat"):
        niqe.niqe(niqe.grey(np.full((200, 300, 3), 128, np.uint8), "yiq"), mu, cov)
    with pytest.raises(ImageError, match="at least 96x96"):
        niqe.niqe(niqe.grey(np.zeros((50, 300, 3), np.uint8), "yiq"), mu, cov)
    textured = niqe.grey(photos.coffee()[:192, :288], "yiq")
    assert np.isfinite(niqe.niqe(textured, mu, cov))
