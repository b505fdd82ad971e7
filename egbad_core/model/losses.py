"""EGBAD's three losses (and the optional refinement stage's), one small function each.

All adversarial terms are binary cross-entropy on D's logit against a constant target: D wants
real pairs (x, E(x)) at ``real_label`` and fake pairs (G(z), z) at 0; G wants its fakes at 1;
E wants real pairs at 0, so that they look like fakes. The cycle term ‖x − G(E(x))‖₁ is ALAD's
consistency on x, off in the seed's recipe.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def adversarial(logit: torch.Tensor, target: float) -> torch.Tensor:
    """BCE-with-logits of ``logit`` against the constant ``target``."""
    return F.binary_cross_entropy_with_logits(logit, torch.full_like(logit, target))


def discriminator_real(logit: torch.Tensor, real_label: float) -> torch.Tensor:
    """D's half on real pairs; ``real_label`` below 1 is one-sided label smoothing."""
    return adversarial(logit, real_label)


def discriminator_fake(logit: torch.Tensor) -> torch.Tensor:
    """D's half on fake pairs."""
    return adversarial(logit, 0.0)


def generator_loss(fake_logit: torch.Tensor, reconstruction: torch.Tensor | None, x: torch.Tensor,
                   cycle_weight: float) -> torch.Tensor:
    """G fools D; with a cycle weight it also reconstructs x from E's codes (``reconstruction``)."""
    return _with_cycle(adversarial(fake_logit, 1.0), reconstruction, x, cycle_weight)


def encoder_loss(real_logit: torch.Tensor, reconstruction: torch.Tensor | None, x: torch.Tensor,
                 cycle_weight: float) -> torch.Tensor:
    """E makes real pairs look fake; with a cycle weight it also learns codes G reconstructs x from."""
    return _with_cycle(adversarial(real_logit, 0.0), reconstruction, x, cycle_weight)


def _with_cycle(loss: torch.Tensor, reconstruction: torch.Tensor | None, x: torch.Tensor, weight: float) -> torch.Tensor:
    """``loss`` plus ALAD's cycle term weight·‖x − G(E(x))‖₁, where there is one."""
    if weight and reconstruction is not None:
        loss = loss + weight * F.l1_loss(reconstruction, x)
    return loss


def refinement_loss(reconstruction: torch.Tensor, x: torch.Tensor, fake_features: torch.Tensor | None,
                    real_features: torch.Tensor | None, feature_weight: float) -> torch.Tensor:
    """f-AnoGAN's second stage: G(E(x)) ≈ x, and D sees the same features in both (weight κ; with
    κ 0 the features are not needed and may be None)."""
    loss = F.mse_loss(reconstruction, x)
    if feature_weight:
        loss = loss + feature_weight * F.mse_loss(fake_features, real_features)
    return loss
