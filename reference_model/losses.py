"""Training losses: L2, LPIPS (when its weights are present) and L_AP, each with a weight.

L_AP is the benchmark's own periodicity code (:func:`op4ksr_bench.metrics.periodicity.periodicity_loss`): the
lattice-lag prominences of the prediction's high-passed autocorrelation in excess of the target's own, at the
latent (16 px) and token (32 px) pitches of the F16 model. The PAS metric is computed by the same functions, so
the loss optimises exactly what the benchmark measures.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from op4ksr_bench.metrics.periodicity import periodicity_loss

logger = logging.getLogger(__name__)

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
"""torchvision's AlexNet weights, which ``lpips.LPIPS(net="alex")`` loads from ``$TORCH_HOME/hub/checkpoints``."""


def ap_loss(prediction: torch.Tensor, target: torch.Tensor, periods: Sequence[int] = (16, 32)) -> torch.Tensor:
    """L_AP for ``[B, 3, H, W]`` images in ``[0, 1]`` (prediction may leave the range slightly); scalar.

    Zero when the prediction has no lattice peak the target lacks; positive for an injected period. Images
    must be at least ``2 * (max(periods) + 4)`` px on the shorter side.
    """
    return periodicity_loss(prediction, target, periods)


def lpips_weights_present() -> Path | None:
    """Path of the AlexNet weights LPIPS needs if present under ``$TORCH_HOME``, else None."""
    from op4ksr_bench.paths import torch_home

    path = torch_home() / "hub" / "checkpoints" / ALEXNET_FILE
    return path if path.is_file() else None


class SuperResolutionLoss(nn.Module):
    """``l2_weight * MSE + lpips_weight * LPIPS + ap_weight * L_AP``.

    Args:
        l2_weight: Weight of the pixel MSE (images in ``[0, 1]``).
        lpips_weight: Weight of LPIPS (AlexNet). If its weights are missing the term is dropped with a warning
            and :attr:`lpips_active` is False (the trainer records it).
        ap_weight: Weight of L_AP.
        ap_periods: Periods (output px) L_AP looks at.
    """

    def __init__(self, l2_weight: float = 1.0, lpips_weight: float = 0.0, ap_weight: float = 0.0, ap_periods=(16, 32)):
        super().__init__()
        self.l2_weight = float(l2_weight)
        self.lpips_weight = float(lpips_weight)
        self.ap_weight = float(ap_weight)
        self.ap_periods = tuple(int(period) for period in ap_periods)
        self.lpips = None
        if self.lpips_weight > 0:
            if lpips_weights_present() is None:
                logger.warning("LPIPS weights (%s) not under $TORCH_HOME/hub/checkpoints; LPIPS term off", ALEXNET_FILE)
            else:
                import lpips

                self.lpips = lpips.LPIPS(net="alex", verbose=False).eval().requires_grad_(False)

    @property
    def lpips_active(self) -> bool:
        return self.lpips is not None

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss (scalar, differentiable) and its unweighted parts as floats (``l2``, ``lpips``, ``ap``)."""
        prediction = prediction.float()
        target = target.float()
        l2 = F.mse_loss(prediction, target)
        total = self.l2_weight * l2
        parts = {"l2": float(l2.detach())}
        if self.lpips is not None:
            perceptual = self.lpips(prediction * 2 - 1, target * 2 - 1).mean()
            total = total + self.lpips_weight * perceptual
            parts["lpips"] = float(perceptual.detach())
        if self.ap_weight > 0:
            periodic = ap_loss(prediction, target, self.ap_periods)
            total = total + self.ap_weight * periodic
            parts["ap"] = float(periodic.detach())
        return total, parts
