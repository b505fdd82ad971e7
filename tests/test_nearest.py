"""The nearest-row search every local term makes: exact for small searches, grouped for large ones."""

import torch

from egbad_core.score import nearest


def _clumped(rows: int, seed: int) -> torch.Tensor:
    """Rows drawn around a few dozen centres, as a texture's places gather around its motifs."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(40, 12, generator=generator) * 3
    return centres[torch.randint(0, 40, (rows,), generator=generator)] + torch.randn(rows, 12, generator=generator)


def test_exact_distances_are_the_nearest_rows_distances():
    bank, queries = _clumped(300, 0), _clumped(50, 1)
    assert torch.allclose(nearest.exact_distances(queries, bank), torch.cdist(queries, bank).amin(dim=1), atol=1e-4)
    # A bank of several blocks (the last one short) and queries of several chunks: each query's
    # nearest row found whichever block holds it, the queries near the last rows too.
    bank = _clumped(2 * nearest.BANK_BLOCK + 276, 2)
    queries = torch.cat([_clumped(2 * nearest.NEAREST_CHUNK + 452, 3), bank[-40:] + 0.01])
    found = nearest.exact_distances(queries, bank)
    assert torch.allclose(found, torch.cdist(queries, bank).amin(dim=1), atol=1e-3)
    assert found[-40:].max() < 0.05


def test_a_large_search_is_grouped_never_below_the_truth_and_exact_at_each_images_worst_places():
    bank = _clumped(1024, 0)
    features = _clumped(4 * 64 * 64, 1).view(4, 64, 64, 12).permute(0, 3, 1, 2)
    features[2, :, 10:13, 20:23] += 9.0  # a defect: far from every row
    assert features[0].numel() // 12 * 4 >= nearest.GROUPED_FROM * len(bank)  # the grouped path is taken
    truth = torch.cdist(features.permute(0, 2, 3, 1).reshape(-1, 12), bank).amin(dim=1).view(4, 64, 64)
    assert torch.allclose(nearest.nearest_map(features, bank), truth, atol=1e-3)  # exact unless asked
    with nearest.grouped_search():  # as a photo's windows are searched
        found = nearest.nearest_map(features, bank)
    assert (found >= truth - 1e-3).all()
    assert torch.allclose(found.flatten(1).amax(dim=1), truth.flatten(1).amax(dim=1), atol=1e-3)
    assert found[2].argmax() == truth[2].argmax()
    assert (found - truth).abs().lt(1e-3).float().mean() > 0.8  # most places exact as they are
    grouped = nearest.grouped_distances(features.permute(0, 2, 3, 1).reshape(-1, 12), bank).view(4, 64, 64)
    assert (grouped > truth + 1e-3).any()  # the grouped search alone does miss some, which the second look mends


def test_a_banks_groups_are_made_once_and_a_new_bank_gets_its_own():
    bank = _clumped(1024, 0)
    queries = _clumped(20000, 1)
    nearest.grouped_distances(queries, bank)
    first = nearest._groups_of(bank)
    assert nearest._groups_of(bank) is first
    other = bank + 5.0
    assert nearest._groups_of(other) is not first
    shifted = nearest.grouped_distances(queries + 5.0, other)
    assert torch.allclose(shifted, nearest.grouped_distances(queries, bank), atol=1e-3)
