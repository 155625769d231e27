import numpy as np
import torch

from flow_sceneflow.icpflow.histogram import best_translation, translation_candidates


def _masks(*tensors):
    return [torch.ones(t.shape[:2], dtype=torch.bool) for t in tensors]


def test_histogram_finds_an_injected_translation(box_surface):
    shifts = np.array([[1.2, -0.7, 0.0], [-0.4, 0.9, 0.05], [0.0, 0.0, 0.0]])
    sources, targets = [], []
    rng = np.random.default_rng(0)
    for b, shift in enumerate(shifts):
        points = box_surface(points=250, seed=b)
        # the target sees 80% of the same surface points, with 1 cm noise
        kept = rng.permutation(250)[:200]
        sources.append(points[:200])
        targets.append(points[kept] + shift + rng.normal(0, 0.01, (200, 3)))
    src = torch.tensor(np.stack(sources)).float()
    dst = torch.tensor(np.stack(targets)).float()
    src_mask, dst_mask = _masks(src, dst)
    candidates = translation_candidates(src, dst, src_mask, dst_mask, extent=1.67)
    assert candidates.shape == (3, 6, 3)
    assert torch.all(candidates[:, -1] == 0)
    found = best_translation(src, dst, src_mask, dst_mask, candidates).numpy()
    assert np.abs(found[:, :2] - shifts[:, :2]).max() <= 0.1
    assert np.abs(found[:, 2] - shifts[:, 2]).max() <= 0.1


def test_histogram_ignores_padding(box_surface):
    src = torch.tensor(box_surface(points=150, seed=1)).float()[None]
    dst = src + torch.tensor([0.8, 0.3, 0.0])
    pad = torch.full((1, 50, 3), 0.0)
    src_padded = torch.cat([src, pad], 1)
    mask = torch.cat([torch.ones(1, 150), torch.zeros(1, 50)], 1).bool()
    candidates = translation_candidates(src_padded, dst, mask, _masks(dst)[0], extent=1.67)
    found = best_translation(src_padded, dst, mask, _masks(dst)[0], candidates)
    assert torch.allclose(found[0, :2], torch.tensor([0.8, 0.3]), atol=0.1)
