"""Hypothesis strategies for the engine's tests: broadcastable shapes and well-conditioned values."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes


def shapes(min_dims=0, max_dims=3, max_side=4):
    return array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def broadcastable_pair(max_dims=3, max_side=4):
    """Two shapes that broadcast together (either side may be the smaller one)."""
    return mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=max_dims, min_side=1,
                                         max_side=max_side).map(lambda s: s.input_shapes)


def values(shape, low=-2.0, high=2.0, away_from_zero=0.0, seed_strategy=st.integers(0, 2**31 - 1)):
    """Float64 arrays of `shape` in [low, high], with |x| >= away_from_zero (well conditioned)."""
    @st.composite
    def draw_array(draw):
        rng = np.random.default_rng(draw(seed_strategy))
        x = rng.uniform(low, high, size=shape)
        if away_from_zero:
            x = np.where(np.abs(x) < away_from_zero, np.sign(x + 1e-12) * away_from_zero + x, x)
        return x
    return draw_array()
