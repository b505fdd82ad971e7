import pytest
import torch
import torch.nn.functional as F

from egbad_core.score.tiling import Windows, kept_spans, window_starts


@pytest.mark.parametrize("length,window,overlap", [(1000, 256, 64), (257, 256, 64), (512, 256, 0), (2448, 256, 64)])
def test_the_windows_cover_the_side_and_share_at_least_the_overlap(length, window, overlap):
    starts = window_starts(length, window, overlap)
    assert starts[0] == 0 and starts[-1] + window == length
    assert all(a + window - b >= overlap for a, b in zip(starts, starts[1:]))
    spans = kept_spans(starts, window, length)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))  # each pixel taken from exactly one window
    for start, (lo, hi) in zip(starts, spans):
        assert start <= lo < hi <= start + window


def test_a_side_within_one_window_is_one_window():
    assert window_starts(200, 256) == [0] and window_starts(256, 256) == [0]
    with pytest.raises(ValueError, match="overlap"):
        window_starts(1000, 256, 256)


def _local(x: torch.Tensor, reach: int) -> torch.Tensor:
    """A term that sees ``reach`` px around each pixel and padding at the edges, as the scores do."""
    return F.avg_pool2d(x, 2 * reach + 1, stride=1, padding=reach, count_include_pad=True).sum(dim=1)


@pytest.mark.parametrize("height,width", [(300, 700), (180, 520), (256, 256)])
def test_stitched_window_maps_are_the_whole_photos_map_without_seams(height, width):
    torch.manual_seed(0)
    photo = torch.rand(3, height, width)
    windows = Windows(height, width, window=128, overlap=32)
    pieces = windows.cut(photo)
    assert pieces.shape == (len(windows), 3, 128, 128)
    stitched = windows.stitch(_local(pieces, reach=8))
    whole = _local(photo[None], reach=8)[0]
    assert stitched.shape == (height, width)
    assert torch.allclose(stitched, whole, atol=1e-5)  # the photo's own edges too: a window there sees them


def test_too_little_overlap_shows_seams():
    torch.manual_seed(0)
    photo = torch.rand(1, 128, 376)
    windows = Windows(128, 376, window=128, overlap=4)
    assert windows.columns == [0, 124, 248]  # 4 px shared: each window's kept part reaches 2 px from its edge
    stitched = windows.stitch(_local(windows.cut(photo), reach=8))
    whole = _local(photo[None], reach=8)[0]
    assert not torch.allclose(stitched[8:-8, 8:-8], whole[8:-8, 8:-8], atol=1e-3)


def test_uint8_photos_are_cut_as_they_are_and_short_sides_padded():
    photo = torch.randint(0, 256, (1, 100, 300), dtype=torch.uint8)
    windows = Windows(100, 300, window=128, overlap=32)
    pieces = windows.cut(photo)
    assert pieces.dtype == torch.uint8 and pieces.shape[-2:] == (128, 128)
    assert torch.equal(pieces[0, :, :100, :128], photo[:, :, :128])
    assert torch.equal(pieces[0, :, 100:, :], pieces[0, :, 99:100, :].expand(-1, 28, -1))  # the edge repeated
    assert windows.stitch(torch.zeros(len(windows), 128, 128)).shape == (100, 300)
