"""The pixels' own local statistics, the patch scorer's second description of a place beside D's
features: what 4×4-pixel features cannot see. A stain shifts the local mean, a smear takes away
the local spread and fine detail, over a larger area than D looks at."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import ScoreConfig
from .lines import line_step


def local_moments(x: torch.Tensor, window: int, detail: bool = False, floor: float = 0.0,
                  coarse: int = 0) -> torch.Tensor:
    """Each channel's mean and spread over ``window``×``window`` pixels, a place every half window:
    (N, 2C, h, w), and with ``detail`` its fine detail there too, the mean of |x − its 3×3 mean|
    (N, 3C, h, w). On the texture benchmark's photographs these found the smears and stains that
    D's features missed; the detail finds a smear where the spread does not, on a surface whose
    coarse shading outweighs its grain. A ``floor`` above 0 takes the detail's log(detail + floor),
    in which a smear's drop is the same on every surface. A ``coarse`` window (a multiple of the
    window) adds the same statistics over that many pixels, on the same grid (N, 6C, h, w): a
    half-transparent stain a little larger than the window leaves each 8-px window looking like a
    darker part of a busy surface, but no 32-px window of it is that dark (rock's stains 0.77 →
    0.88 on the tuning half)."""
    stride = max(1, window // 2)
    x = x.float().contiguous()  # the networks' channels-last layout halves the sums' speed
    c = x.shape[1]
    values = [x, x * x]
    if detail:
        values.append((x - _box3(F.pad(x, (1, 1, 1, 1), mode="replicate")) / 9).abs())
    reach = coarse // window - 1 if coarse else 0  # fine places beyond the frame a coarse window needs
    sums = torch.cat([_window_sums(v, stride, reach) for v in values], dim=1)
    rows, columns = (_inside(length, window, stride, reach, x.device) for length in x.shape[-2:])
    inner = (slice(reach, sums.shape[-2] - reach), slice(reach, sums.shape[-1] - reach))
    parts = _statistics(sums[..., inner[0], inner[1]] / (rows[inner[0], None] * columns[None, inner[1]]), c, detail, floor)
    if coarse:
        # A coarse window is the fine windows side by side: every second place (one window apart),
        # coarse // window of them each way; their sums and pixel counts add up exactly.
        sums, rows, columns = (_side_by_side(t, coarse // window) for t in (sums, rows, columns))
        parts += _statistics(sums / (rows[:, None] * columns[None, :]), c, detail, floor)
    return torch.cat(parts, dim=1)


def _window_sums(values: torch.Tensor, stride: int, beyond: int) -> torch.Tensor:
    """Each 2·``stride``-px window's sums, a place every ``stride`` pixels (the first window half
    outside the frame, so that a place falls on every step), and ``beyond`` more places past each
    edge, the frame zero-padded: blocks of ``stride`` pixels summed, then each two neighbours —
    a third of the time pooling had taken, which large photos had spent a fifth of their time in."""
    pad, margin = stride // 2, beyond * stride
    height, width = values.shape[-2:]
    count = lambda length: (length + 2 * (margin + pad) - 2 * stride) // stride + 1  # noqa: E731  (as pooling's)
    rows, columns = count(height), count(width)
    # Zero padding before and after, to whole blocks: one more block than there are windows.
    top, left = margin + pad, margin + pad
    padded = F.pad(values, (left, (columns + 1) * stride - width - left, top, (rows + 1) * stride - height - top))
    n, k = padded.shape[:2]
    blocks = padded.view(n, k, rows + 1, stride, columns + 1, stride).sum(dim=(3, 5))
    down = blocks[:, :, :-1] + blocks[:, :, 1:]
    return down[..., :-1] + down[..., 1:]


def _inside(length: int, window: int, stride: int, beyond: int, device: torch.device) -> torch.Tensor:
    """The frame's pixels under each window along a side of ``length`` px (the windows of ``_window_sums``)."""
    pad, margin = (window - stride) // 2, beyond * stride
    ones = F.pad(torch.ones(1, 1, length, device=device), (margin,) * 2)
    return F.avg_pool1d(ones, window, stride=stride, padding=pad, count_include_pad=True)[0, 0] * window


def _box3(padded: torch.Tensor) -> torch.Tensor:
    """Sums of each 3×3 neighbourhood of a padded image, as two 1-D passes of shifted adds."""
    across = padded[..., :, :-2] + padded[..., :, 1:-1] + padded[..., :, 2:]
    return across[..., :-2, :] + across[..., 1:-1, :] + across[..., 2:, :]


def _side_by_side(t: torch.Tensor, count: int) -> torch.Tensor:
    """Sums of ``count`` places two steps apart, centred on each place, along the last axis (and the
    one before it, for a map), for the places ``count − 1`` in from each edge."""
    taps = torch.zeros(2 * count - 1, device=t.device)
    taps[::2] = 1.0
    if t.dim() == 1:
        return F.conv1d(t.view(1, 1, -1), taps.view(1, 1, -1)).view(-1)
    n, k, h, w = t.shape
    flat = F.conv2d(t.reshape(n * k, 1, h, w), taps.view(1, 1, -1, 1))
    flat = F.conv2d(flat, taps.view(1, 1, 1, -1))
    return flat.view(n, k, flat.shape[-2], flat.shape[-1])


def _statistics(pooled: torch.Tensor, c: int, detail: bool, floor: float) -> list[torch.Tensor]:
    """Mean, spread and detail from the windows' means of x, x² and the detail."""
    mean = pooled[:, :c]
    parts = [mean, (pooled[:, c : 2 * c] - mean.square()).clamp_min(0.0).sqrt()]
    if detail:
        fine = pooled[:, 2 * c :]
        parts.append(torch.log(fine + floor) if floor > 0 else fine)
    return parts


SHAPE_CELLS = 4  # a shape window is this many cells a side
SHAPE_FLOOR = 0.05  # in the networks' units ([-1, 1] for the patch preset): a flat window's spread
SHAPE_WEIGHT = 2.0  # the shape window's log spread, against its shape and mean
SHAPE_COLUMNS = SHAPE_CELLS**2 + 2  # a layout's columns: the cells' shape, their log spread and mean


def local_shapes(x: torch.Tensor, window: int, step: int, rows: int, columns: int) -> torch.Tensor:
    """The tone's coarse layout around each place of a grid (``step`` apart, ``rows`` ×
    ``columns`` of them): the gray mean of each of SHAPE_CELLS² cells of a ``window``-px window,
    as its shape (the cells less their mean, over their spread), the log of that spread and the
    mean: (N, SHAPE_COLUMNS, rows, columns). A half-transparent veil over a grey surface of
    strong contrast keeps the surface's pattern at a fraction of its contrast: each 8-px window
    of it looks like a flatter part of the surface, but the cells' layout is one the surface has
    only at full contrast (the tuning half's veils: rock 0.79 → 0.84, the report half's reptile 0.54 → 0.92)."""
    cell = window // SHAPE_CELLS
    gray = x.mean(dim=1, keepdim=True)
    height, width = gray.shape[-2:]
    if min(height, width) < window:  # a frame smaller than the window: its edges repeated out to it
        gray = F.pad(gray, (0, max(0, window - width), 0, max(0, window - height)), mode="replicate")
        height, width = gray.shape[-2:]
    means = F.avg_pool2d(gray, cell, stride=1)  # every cell's mean, by its top left pixel
    first = step - step // 2  # the first place's centre, as local_moments' windows lie
    # Each window centred on its place, moved in where it would reach past the frame: padding had
    # filled it with flat edges, a layout that looks like a veil (rock's veils by the layouts alone 0.81 → 0.88).
    tops, lefts = ((first + step * torch.arange(count, device=x.device) - window // 2).clamp(0, length - window)
                   for count, length in ((rows, height), (columns, width)))
    cells = torch.cat([means[..., (tops + i * cell)[:, None], (lefts + j * cell)[None, :]]
                       for i in range(SHAPE_CELLS) for j in range(SHAPE_CELLS)], dim=1)
    mean = cells.mean(dim=1, keepdim=True)
    spread = cells.std(dim=1, keepdim=True)
    shape = (cells - mean) / (spread + SHAPE_FLOOR) / SHAPE_CELLS
    return torch.cat([shape, SHAPE_WEIGHT * torch.log(spread + SHAPE_FLOOR), mean], dim=1)


def cut_layouts(described: torch.Tensor, layouts: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``moments_of``'s description with the layouts joined → (the moments, the layouts) where
    ``layouts`` (a bank of their own), else (the whole description, None)."""
    if not layouts:
        return described, None
    return described[:, :-SHAPE_COLUMNS], described[:, -SHAPE_COLUMNS:]


def layout_step(height: int, width: int, config: ScoreConfig) -> int:
    """Pixels between the places of ``layouts_of``'s grid: at most ``feature_grid`` places a side, as
    D's features and the lines (2 px at 128, 4 at 256), never further apart than the moments' places.
    A veil of 14–20 px against a 24-px window: on the moments' 4-px grid at 128 px the window that
    holds most of it was often missed (the tuning half's veils, rock 0.84 → 0.86, hardgrain 0.93 → 0.96
    on a 2-px grid; benchmarks/RESULTS.md, nineteenth session)."""
    moment_step = max(1, config.moment_window // 2)
    if not config.feature_grid:
        return moment_step
    return min(moment_step, line_step(height, width, config.feature_grid))


def layouts_of(x: torch.Tensor, config: ScoreConfig) -> torch.Tensor:
    """(N, SHAPE_COLUMNS, h, w) the tone layouts (``local_shapes``) of an image scored whole, a place
    every ``layout_step`` px, for a bank of their own."""
    height, width = x.shape[-2:]
    step = layout_step(height, width, config)
    return local_shapes(x.float(), config.shape_window, step, -(-height // step), -(-width // step))


def moments_of(x: torch.Tensor, config: ScoreConfig, layouts: bool = True) -> torch.Tensor:
    """``local_moments`` as the score settings ask for them, and with ``layouts`` and a
    ``shape_window`` beside them the places' ``local_shapes`` on the moments' grid (the last
    SHAPE_COLUMNS columns): one description of each place, as a photo's whole frame is described
    before its windows take their cuts, an aligned set's places are kept, and the seventeenth
    session's checkpoints held both in one bank."""
    moments = local_moments(x, config.moment_window, config.moment_detail, config.detail_floor, config.coarse_window)
    if not (layouts and config.shape_window):
        return moments
    shapes = local_shapes(x.float(), config.shape_window, max(1, config.moment_window // 2), *moments.shape[-2:])
    return torch.cat([moments, shapes.to(moments.dtype)], dim=1)
