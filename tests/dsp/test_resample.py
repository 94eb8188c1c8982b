"""dsp.resample_poly and dsp.Resampler against scipy.signal.resample_poly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp import Resampler, resample_poly

PAIRS = [(25, 64), (16, 25), (1, 2), (3, 1), (2, 3), (100, 256), (5, 5)]


def _x(shape, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (20 * rng.standard_normal(shape) + 50).astype(dtype)


@pytest.mark.parametrize(("up", "down"), PAIRS)
def test_offline_matches_scipy(up, down):
    x = _x((3, 2001))
    y = resample_poly(x, up, down)
    ref = ss.resample_poly(x, up, down, axis=-1)
    assert y.shape == ref.shape and y.dtype == ref.dtype
    assert np.max(np.abs(y - ref)) <= 1e-12 * np.max(np.abs(x))


def test_offline_axis_dtype_and_window():
    x = _x((600, 2), seed=1)
    y = resample_poly(x, 2, 3, axis=0)
    assert np.allclose(y, ss.resample_poly(x, 2, 3, axis=0), rtol=0, atol=1e-10)
    x32 = _x((2, 999), seed=2, dtype=np.float32)
    y32 = resample_poly(x32, 3, 4)
    ref32 = ss.resample_poly(x32, 3, 4, axis=-1)
    assert y32.dtype == np.float32 == ref32.dtype
    assert np.max(np.abs(y32 - ref32)) <= 1e-5 * np.max(np.abs(x32))
    taps = ss.firwin(31, 0.4)
    assert np.allclose(
        resample_poly(x.T, 3, 2, window=taps),
        ss.resample_poly(x.T, 3, 2, axis=-1, window=taps),
        rtol=0,
        atol=1e-10,
    )
    assert np.allclose(
        resample_poly(x.T, 2, 5, window=("kaiser", 8.0)),
        ss.resample_poly(x.T, 2, 5, axis=-1, window=("kaiser", 8.0)),
        rtol=0,
        atol=1e-10,
    )


@pytest.mark.parametrize(("up", "down"), [(25, 64), (16, 25), (1, 3)])
def test_streaming_equals_offline_and_scipy(up, down):
    x = _x((2, 3000), seed=3)
    rs = Resampler(up, down, 2)
    parts = [rs(x[:, i : i + 97]) for i in range(0, 3000, 97)]
    streamed = np.concatenate(parts, axis=1)
    assert rs.n_in == 3000
    # away from the end everything is already out
    assert streamed.shape[1] >= int(3000 * up / down) - int(rs.delay * up / down) - 2
    full = np.concatenate([streamed, rs.flush()], axis=1)
    ref = ss.resample_poly(x, up, down, axis=-1)
    assert full.shape == ref.shape and rs.n_out == ref.shape[1]
    assert np.max(np.abs(full - ref)) <= 1e-12 * np.max(np.abs(x))
    assert np.array_equal(full, resample_poly(x, up, down))


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(0, 800), max_size=10), pair=st.sampled_from(PAIRS[:4]))
def test_streaming_chunk_invariance(cuts, pair):
    x = _x((2, 800), seed=4)
    bounds = [0, *sorted(cuts), 800]
    rs = Resampler(*pair, 2)
    parts = [rs(x[:, a:b]) for a, b in zip(bounds[:-1], bounds[1:])] + [rs.flush()]
    assert np.array_equal(np.concatenate(parts, axis=1), resample_poly(x, *pair))


def test_stream_edges_and_errors():
    rs = Resampler(50, 128, 1)  # 256 -> 100 Hz
    assert rs.up == 25 and rs.down == 64
    assert rs(np.empty((1, 0))).shape == (1, 0)
    assert rs(np.ones((1, 1))).shape[0] == 1
    assert "delay" in repr(rs)
    rs.flush()
    assert rs.flush().shape == (1, 0)
    with pytest.raises(ValueError, match="flushed"):
        rs(np.ones((1, 3)))
    rs.reset()
    assert rs.n_in == 0 and rs(np.ones((1, 3))).shape[0] == 1
    with pytest.raises(ValueError, match="NaN"):
        rs(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="shape"):
        rs(np.ones((2, 5)))
    with pytest.raises(ValueError, match="up"):
        Resampler(0, 2, 1)
    with pytest.raises(TypeError, match="down"):
        Resampler(1, 2.5, 1)
    with pytest.raises(ValueError, match="n_channels"):
        Resampler(1, 2, 0)
    with pytest.raises(ValueError, match="FIR taps"):
        resample_poly(np.ones(10), 2, 3, window=[])


def test_identity_factor_copies():
    x = _x((2, 10))
    y = resample_poly(x, 4, 4)
    assert np.array_equal(y, x) and y is not x
