"""The one full-reference size check: a missing or differently sized reference is one line, never resized."""

from __future__ import annotations

import numpy as np
import pytest

from op4ksr_bench.errors import ImageError
from op4ksr_bench.metrics.pairs import check_reference, check_same_size
from op4ksr_bench.metrics.scoring import create_metrics, score_images


def test_sizes_are_named_and_nothing_is_resized():
    pred, ref = np.zeros((4, 6, 3), np.uint8), np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(ImageError, match=r"^prediction is 6x4 but the reference is 5x4; .*equal sizes"):
        check_same_size(pred, ref)
    with pytest.raises(ImageError, match="dpas is a full-reference metric and needs a reference image"):
        check_reference("dpas", pred, None)
    check_reference("psnr", pred, pred.copy())


def test_every_fr_metric_refuses_a_mismatched_pair_the_same_way():
    metrics, _ = create_metrics(["psnr", "ssim", "ms-ssim"])
    pred = np.zeros((200, 200, 3), np.uint8)
    for metric in metrics:
        with pytest.raises(ImageError, match="but the reference is 199x200"):
            metric(pred, pred[:, :199])
    with pytest.raises(ImageError, match="prediction is 200x200 but its reference is 199x200"):
        score_images(metrics, pred, pred[:, :199])
