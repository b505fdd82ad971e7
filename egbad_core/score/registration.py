"""How an aligned photo lies against its frame: a turn and a shift, found from a reduced copy.

A fixture's jitter of a degree turns a 2,048-px part's corners by 18 px, four steps of the
moments' grid, where the same-place comparison forgives one: without this, each frame place's
spread over the bank photos was wide near every edge of the part, and a stain there passed
(trinkets' stain at a dark object's edge). Each photo's pose against a template (the first bank
photo, reduced to about TEMPLATE_SIDE px) is found by phase correlation over a few turns; the bank
photos' moments are laid into the frame by their poses, and the frame's statistics laid over a test
photo by its own.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

TEMPLATE_SIDE = 512  # px of the reduced copy's longer side a pose is found on (a 2,048-px photo: 4 px a pixel)
TURN = 1.6  # degrees each way searched
TURNS = 17  # turns tried between them (0.2° apart: at 1,400 px from the centre, 2.5 px at most off)


def reduction(height: int, width: int) -> int:
    """Pixels of a photo to one of its reduced copy, each way."""
    return max(1, round(max(height, width) / TEMPLATE_SIDE))


def reduced(photo: torch.Tensor, factor: int) -> torch.Tensor:
    """(1, C, H, W) a photo (normalised) → (h, w): its channels' mean, averaged over ``factor``
    pixels each way, less its mean, over its spread, faded towards the edges (a Hann window,
    so the frame's edge does not correlate with itself)."""
    gray = photo.float().mean(dim=1, keepdim=True)
    small = F.avg_pool2d(gray, factor)[0, 0] if factor > 1 else gray[0, 0]
    small = (small - small.mean()) / small.std().clamp_min(1e-6)
    fade = torch.outer(torch.hann_window(small.shape[0], periodic=False), torch.hann_window(small.shape[1], periodic=False))
    return small * fade.to(small.device)


def pose_of(small: torch.Tensor, template: torch.Tensor, factor: int) -> torch.Tensor:
    """(3,) [turn in radians, shift down, shift right in the photo's pixels]: the pose that lays
    the photo whose reduced copy is ``small`` onto the template's (``to_frame``), the strongest peak of
    phase correlation over TURNS turns."""
    h, w = template.shape
    spectrum = torch.fft.rfft2(template)
    best = (-math.inf, 0.0, 0, 0)
    for turn in torch.linspace(-TURN, TURN, TURNS).tolist():
        angle = math.radians(turn)
        turned = _turned(small[None, None], angle)[0, 0]
        cross = spectrum * torch.fft.rfft2(turned).conj()
        surface = torch.fft.irfft2(cross / cross.abs().clamp_min(1e-9), s=(h, w))
        peak = int(surface.argmax())
        strength = float(surface.view(-1)[peak])
        if strength > best[0]:
            dy, dx = divmod(peak, w)
            dy, dx = dy + _vertex(surface[:, dx], dy), dx + _vertex(surface[dy], dx)
            best = (strength, angle, dy - h if dy > h / 2 else dy, dx - w if dx > w / 2 else dx)
    return torch.tensor([best[1], best[2] * factor, best[3] * factor], dtype=torch.float32)


def _vertex(line: torch.Tensor, at: int) -> float:
    """Where between its neighbours a peak of ``line`` (wrapping round) lies, by a parabola through the three."""
    left, centre, right = (float(line[(at + k) % len(line)]) for k in (-1, 0, 1))
    bend = left - 2 * centre + right
    return 0.0 if bend >= 0 else max(-0.5, min(0.5, 0.5 * (left - right) / bend))


def _turned(image: torch.Tensor, angle: float) -> torch.Tensor:
    """(1, 1, h, w) turned by ``angle`` about its centre (pixel units, not the unit square's)."""
    h, w = image.shape[-2:]
    cos, sin = math.cos(angle), math.sin(angle)
    theta = torch.tensor([[cos, sin * h / w, 0.0], [-sin * w / h, cos, 0.0]], dtype=torch.float32)
    grid = F.affine_grid(theta[None].to(image.device), list(image.shape), align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def laid(places: torch.Tensor, pose: torch.Tensor, step: int, size: tuple[int, int],
         to_frame: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D, h, w) places on a moments grid of ``step`` px over a photo of ``size`` → the same laid
    into the frame (``to_frame``: a bank photo's moments) or out of it onto the photo (a frame's
    statistics over a test photo), by the photo's ``pose`` (``pose_of``), and (h, w) which of them
    came from within the other's edge (beyond it, the edge's are repeated: a turned photo's corner
    has no frame there, and replicated statistics had flagged every good photo's corners)."""
    h, w = places.shape[-2:]
    height, width = size
    angle, ty, tx = (float(v) for v in pose)
    centre_y, centre_x = height / 2, width / 2
    ys = torch.arange(h, dtype=torch.float32) * step + step / 2 - centre_y
    xs = torch.arange(w, dtype=torch.float32) * step + step / 2 - centre_x
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    cos, sin = math.cos(angle), math.sin(angle)
    if to_frame:  # a frame place p takes the photo's q = R(−a)(p − t − c) + c
        y, x = y - ty, x - tx
        source_y, source_x = cos * y - sin * x, sin * y + cos * x
    else:  # a photo place q takes the frame's p = R(a)(q − c) + c + t
        source_y, source_x = cos * y + sin * x + ty, -sin * y + cos * x + tx
    index_y = (source_y + centre_y - step / 2) / step
    index_x = (source_x + centre_x - step / 2) / step
    grid = torch.stack([index_x / max(w - 1, 1) * 2 - 1, index_y / max(h - 1, 1) * 2 - 1], dim=-1)
    inside = (index_y >= 0) & (index_y <= h - 1) & (index_x >= 0) & (index_x <= w - 1)
    grid = grid[None].expand(places.shape[0], -1, -1, -1).to(places.device)
    moved = F.grid_sample(places.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)
    return moved, inside.to(places.device)
