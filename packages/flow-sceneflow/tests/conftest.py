"""Shared fixtures: small synthetic scenes that keep the suite fast."""

import numpy as np
import pytest


def _box_surface(size=(4.0, 2.0, 1.5), points=400, seed=0):
    """Points on the surface of an axis-aligned box centred at the origin (z from 0)."""
    rng = np.random.default_rng(seed)
    size = np.asarray(size)
    faces = rng.integers(0, 6, points)
    p = rng.uniform(-0.5, 0.5, (points, 3))
    axis = faces // 2
    p[np.arange(points), axis] = np.where(faces % 2 == 0, -0.5, 0.5)
    p = p * size
    p[:, 2] += size[2] / 2
    return p


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def box_surface():
    """The box-surface sampler: ``box_surface(size, points, seed)``."""
    return _box_surface
