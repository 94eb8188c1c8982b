"""dsp.sosfilt / sosfiltfilt / SOSFilter / FilterBank against scipy and their contracts."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal as ss
from _constants import FS
from hypothesis import given, settings
from hypothesis import strategies as st

import dsp
from dsp import FilterBank, SOSFilter, _biquad, iir, sosfilt, sosfiltfilt
from dsp.filterbank import design_chain


def _random_filters(n: int, seed: int = 20240607):
    """Stable random designs: butter, cheby1, ellip (orders 1-8, all band types) and notches."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        kind = ["butter", "cheby1", "ellip", "notch"][len(out) % 4]
        if kind == "notch":
            f0 = float(rng.uniform(5, 110))
            q = float(rng.uniform(5, 60))
            sos = ss.tf2sos(*ss.iirnotch(f0, q, fs=FS))
            out.append((f"notch-{f0:.1f}Hz-Q{q:.0f}", sos))
            continue
        order = int(rng.integers(1, 9))
        btype = ["lowpass", "highpass", "bandpass", "bandstop"][int(rng.integers(0, 4))]
        if btype in ("bandpass", "bandstop"):
            lo = float(rng.uniform(0.5, 40))
            wn = [lo, float(rng.uniform(lo + 3, 110))]
        else:
            wn = float(rng.uniform(0.5, 110))
        if kind == "butter":
            sos = ss.butter(order, wn, btype, fs=FS, output="sos")
        elif kind == "cheby1":
            sos = ss.cheby1(order, 1.0, wn, btype, fs=FS, output="sos")
        else:
            sos = ss.ellip(order, 0.5, 40.0, wn, btype, fs=FS, output="sos")
        out.append((f"{kind}{order}-{btype}", sos))
    return out


FILTERS = _random_filters(24)
IDS = [name for name, _ in FILTERS]
BANDPASS_NOTCH = np.vstack(
    [
        ss.butter(4, [0.3, 35.0], "bandpass", fs=FS, output="sos"),
        ss.tf2sos(*ss.iirnotch(50.0, 30.0, fs=FS)),
    ]
)


def _signal(shape, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = 30.0 * rng.standard_normal(shape) + 200.0 * rng.standard_normal(shape[:-1] + (1,))
    return x.astype(dtype)


def _close(a, b, x):
    scale = max(1.0, float(np.max(np.abs(x))))
    assert a.shape == b.shape
    assert a.dtype == b.dtype
    assert np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))) <= 1e-9 * scale


# --------------------------------------------------------------------------- against scipy
@pytest.mark.parametrize(("name", "sos"), FILTERS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sosfilt_matches_scipy(name, sos, dtype):
    x = _signal((3, 700), seed=1, dtype=dtype)
    _close(sosfilt(sos, x), ss.sosfilt(sos, x), x)
    xt = np.ascontiguousarray(x.T)  # time on axis 0
    _close(sosfilt(sos, xt, axis=0), ss.sosfilt(sos, xt, axis=0), x)


@pytest.mark.parametrize(("name", "sos"), FILTERS[::2], ids=IDS[::2])
def test_sosfilt_with_zi_matches_scipy(name, sos):
    x = _signal((2, 3, 300), seed=2)
    for axis in (0, 1, -1):
        shape = list(x.shape)
        shape[axis] = 2
        zi = np.random.default_rng(3).standard_normal([sos.shape[0]] + shape)
        y, zf = sosfilt(sos, x, axis=axis, zi=zi)
        y_ref, zf_ref = ss.sosfilt(sos, x, axis=axis, zi=zi)
        _close(y, y_ref, x)
        _close(zf, zf_ref, x)


def test_sosfilt_float32_coefficients_compute_in_float32():
    sos = BANDPASS_NOTCH.astype(np.float32)
    x = _signal((4, 1000), dtype=np.float32)
    y = sosfilt(sos, x)
    ref = ss.sosfilt(sos, x)
    assert y.dtype == np.float32 == ref.dtype
    assert np.max(np.abs(y - ref)) <= 1e-5 * np.max(np.abs(x))


@pytest.mark.parametrize(("name", "sos"), FILTERS, ids=IDS)
@pytest.mark.parametrize("padtype", ["odd", "even", "constant", None])
def test_sosfiltfilt_matches_scipy(name, sos, padtype):
    x = _signal((2, 400), seed=4)
    _close(sosfiltfilt(sos, x, padtype=padtype), ss.sosfiltfilt(sos, x, padtype=padtype), x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int16])
def test_sosfiltfilt_axis0_and_dtypes(dtype):
    x = _signal((500, 3), seed=5).astype(dtype)
    for padlen in (None, 0, 17):
        y = sosfiltfilt(BANDPASS_NOTCH, x, axis=0, padlen=padlen)
        ref = ss.sosfiltfilt(BANDPASS_NOTCH, x, axis=0, padlen=padlen)
        _close(y, ref, x)


def test_matches_scipy_bit_for_bit():
    # same arithmetic order as scipy's _sosfilt and no FMA contraction: identical results
    # (the README claims it; a scipy built with FMA would make this fail, on purpose)
    x = _signal((8, 2000), seed=6)
    np.testing.assert_array_equal(sosfilt(BANDPASS_NOTCH, x), ss.sosfilt(BANDPASS_NOTCH, x))


@pytest.mark.parametrize("n_channels", [1, 7, 9, 19])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_any_channel_count_and_long_cascades_bit_for_bit(n_channels, dtype):
    # The kernels run channels in vectors of dsp._biquad.LANES (spare lanes padded) and unroll
    # cascades of up to MAX_UNROLLED sections: cover partial tiles, several tiles, a cascade
    # too long to unroll (12 sections), odd lengths (vector transposes plus a scalar tail)
    # and both directions of sosfiltfilt.
    long = np.vstack([BANDPASS_NOTCH, ss.butter(7, 20.0, fs=FS, output="sos")])  # 9 sections
    long = np.vstack([long, ss.cheby1(6, 1.0, 3.0, "highpass", fs=FS, output="sos")])
    assert long.shape[0] > _biquad.MAX_UNROLLED
    x = _signal((n_channels, 1001), seed=n_channels, dtype=dtype)
    for sos in (BANDPASS_NOTCH.astype(dtype), long.astype(dtype)):
        np.testing.assert_array_equal(sosfilt(sos, x), ss.sosfilt(sos, x))
        np.testing.assert_array_equal(sosfiltfilt(sos, x), ss.sosfiltfilt(sos, x))
        if dtype == np.float64:
            y = SOSFilter(sos, n_channels, init="zeros")(x)
            np.testing.assert_array_equal(y, ss.sosfilt(sos, x))


@settings(max_examples=60, deadline=None)
@given(
    n_channels=st.integers(1, 20),
    # from 1: scipy fails on an empty signal with zi (dsp does not: see test_empty_...)
    n_samples=st.integers(1, 300),
    n_filters=st.integers(1, 3),
    seed=st.integers(0, 2**16),
    reverse=st.booleans(),
)
def test_vector_kernels_bit_for_bit_on_random_shapes(
    n_channels, n_samples, n_filters, seed, reverse
):
    # Any number of channels (tiles of 8 lanes, padded, or the scalar loop for one), any
    # length (8-sample vector transposes plus a scalar tail), 1-24 sections (unrolled or not).
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(FILTERS), n_filters, replace=False)
    sos = np.vstack([FILTERS[i][1] for i in picks])
    x = 50.0 * rng.standard_normal((n_channels, n_samples))
    if reverse:  # the backward pass of sosfiltfilt runs the kernel from the end
        x = np.ascontiguousarray(x[:, ::-1])
    zi = rng.standard_normal((sos.shape[0], n_channels, 2))
    y, zf = sosfilt(sos, x, zi=zi)
    y_ref, zf_ref = ss.sosfilt(sos, x, zi=zi)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(zf, zf_ref)
    if n_samples > 3 * (2 * sos.shape[0] + 1):
        np.testing.assert_array_equal(sosfiltfilt(sos, x), ss.sosfiltfilt(sos, x))


_PORTABLE_CHECK = """
import os, numpy as np, scipy.signal as ss, dsp
from numba.core import config
assert config.CPU_NAME == os.environ["NUMBA_CPU_NAME"]  # the target really changed
sos = np.vstack([ss.butter(4, [0.3, 35.0], "bandpass", fs=256.0, output="sos"),
                 ss.butter(8, 20.0, fs=256.0, output="sos"), ss.cheby1(6, 1.0, 3.0, "highpass",
                 fs=256.0, output="sos")])  # 13 sections: the generic loop
x = np.random.default_rng(0).standard_normal((11, 777)) * 40.0
for s in (sos[:5], sos):
    assert np.array_equal(dsp.sosfilt(s, x), ss.sosfilt(s, x))
    assert np.array_equal(dsp.sosfiltfilt(s, x), ss.sosfiltfilt(s, x))
    assert np.array_equal(dsp.SOSFilter(s, 11, init="zeros")(x), ss.sosfilt(s, x))
print("bit-identical")
"""


@pytest.mark.slow
@pytest.mark.parametrize("cpu", ["generic", "haswell"])
def test_bit_identical_on_other_instruction_sets(cpu, tmp_path):
    # The vector code is plain LLVM IR: on an SSE2-only (generic) or AVX2 (haswell) target
    # LLVM splits the 8-lane vectors differently, and the results must not change.
    env = dict(os.environ, NUMBA_CPU_NAME=cpu, NUMBA_CACHE_DIR=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-c", _PORTABLE_CHECK], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "bit-identical"


# ------------------------------------------------- the reference kernels (numba's internals)
def _with_kernels(name, fn):
    before = iir.set_kernels(name)
    try:
        return fn()
    finally:
        iir.set_kernels(before)


@settings(max_examples=40, deadline=None)
@given(
    n_channels=st.integers(1, 20),
    n_samples=st.integers(0, 300),
    n_filters=st.integers(1, 3),
    seed=st.integers(0, 2**16),
    cuts=st.lists(st.integers(0, 300), max_size=5),
    n_nan=st.integers(0, 12),
    init=st.sampled_from(["steady", "zeros"]),
)
def test_reference_kernels_equal_vector_kernels(
    n_channels, n_samples, n_filters, seed, cuts, n_nan, init
):
    # The plain @njit kernels of dsp._biquad_ref are the oracle of the LLVM-IR vector kernels
    # of dsp._biquad (and their fallback on a numba that breaks them): same output, tolerance
    # zero, offline (both directions, with a state) and streaming (NaN holds, late starts,
    # chunking) alike.
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(FILTERS), n_filters, replace=False)
    sos = np.vstack([FILTERS[i][1] for i in picks])
    x = 50.0 * rng.standard_normal((n_channels, n_samples)) + 300.0
    zi = rng.standard_normal((sos.shape[0], n_channels, 2))
    nan = x.copy()
    if n_samples:
        nan[rng.integers(0, n_channels, n_nan), rng.integers(0, n_samples, n_nan)] = np.nan
    bounds = [0, *sorted(c for c in cuts if c <= n_samples), n_samples]

    def run():
        f = SOSFilter(sos, n_channels, init=init)
        parts = [f(np.ascontiguousarray(nan[:, a:b])) for a, b in zip(bounds, bounds[1:])]
        y, zf = sosfilt(sos, x, zi=zi)
        fwd_bwd = sosfiltfilt(sos, x) if n_samples > 3 * (2 * sos.shape[0] + 1) else None
        return np.concatenate(parts, axis=1), f.zi, f.started, y, zf, fwd_bwd

    simd, ref = _with_kernels("simd", run), _with_kernels("reference", run)
    for a, b in zip(simd, ref):
        np.testing.assert_array_equal(a, b)
    if n_samples:  # scipy fails on an empty signal with zi
        np.testing.assert_array_equal(ref[3], ss.sosfilt(sos, x, zi=zi)[0])


def test_reference_kernels_restart_an_overflowing_channel():
    hp = ss.butter(2, 100.0, "highpass", fs=FS, output="sos")
    huge = np.array([0.0] + [1.7e308, -1.7e308] * 20)
    x = np.vstack([np.zeros_like(huge), huge])

    def run():
        f = SOSFilter(hp, 2)
        with np.errstate(over="ignore", invalid="ignore"):
            y = f(x)
        return y, f.n_restarts, f.started, f(np.ones((2, 10)))

    simd, ref = _with_kernels("simd", run), _with_kernels("reference", run)
    assert ref[1] == simd[1] == 1 and list(ref[2]) == [True, False]
    for a, b in zip(simd, ref):
        np.testing.assert_array_equal(a, b)


def test_kernel_switch_errors():
    before = iir.kernels()
    with pytest.raises(ValueError, match="Allowed values are 'simd', 'reference', but got 'avx'"):
        iir.set_kernels("avx")
    assert iir.kernels() == before


_REFERENCE_RUN = """
import sys, numpy as np, scipy.signal as ss, dsp
sos = ss.butter(4, [0.3, 35.0], "bandpass", fs=256.0, output="sos")
x = np.random.default_rng(0).standard_normal((11, 777)) * 40.0
assert np.array_equal(dsp.sosfilt(sos, x), ss.sosfilt(sos, x))
assert np.array_equal(dsp.SOSFilter(sos, 11, init="zeros")(x), ss.sosfilt(sos, x))
print(dsp.iir.kernels(), "dsp._biquad" in sys.modules)
"""


@pytest.mark.parametrize(
    "value, out", [("reference", "reference False"), ("", "simd True"), (" SIMD ", "simd True")]
)
def test_environment_switch_runs_without_numba_internals(value, out):
    env = dict(os.environ, DREAMNET_DSP_KERNELS=value)
    proc = subprocess.run(
        [sys.executable, "-c", _REFERENCE_RUN], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == out


def test_environment_switch_rejects_unknown_kernels():
    env = dict(os.environ, DREAMNET_DSP_KERNELS="fast")
    proc = subprocess.run(
        [sys.executable, "-c", "import dsp.iir"], env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "DREAMNET_DSP_KERNELS must be 'simd' or 'reference', got 'fast'" in proc.stderr


# --------------------------------------------------------------------------- streaming
def _steady_reference(sos, x):
    zi = ss.sosfilt_zi(sos)[:, np.newaxis, :] * x[:, 0][np.newaxis, :, np.newaxis]
    return ss.sosfilt(sos, x, zi=zi)[0]


def test_sosfilter_steady_state_equals_scipy_with_zi():
    x = _signal((8, 3000), seed=7)
    y = SOSFilter(BANDPASS_NOTCH, 8)(x)
    _close(y, _steady_reference(BANDPASS_NOTCH, x), x)


@pytest.mark.parametrize(("name", "sos"), FILTERS[:12], ids=IDS[:12])
def test_steady_state_zi_matches_scipy(name, sos):
    assert np.allclose(dsp.iir.steady_state_zi(sos), ss.sosfilt_zi(sos), rtol=1e-9, atol=1e-12)


def test_sosfilter_zeros_init_equals_plain_sosfilt():
    x = _signal((3, 1000), seed=8)
    f = SOSFilter(BANDPASS_NOTCH, 3, init="zeros")
    _close(f(x), ss.sosfilt(BANDPASS_NOTCH, x), x)
    _close(f.zi, ss.sosfilt(BANDPASS_NOTCH, x, zi=np.zeros((5, 3, 2)))[1], x)


def test_steady_state_start_has_no_transient():
    x = np.full((2, 2000), 5000.0)  # a large DC offset, as an electrode has
    y = SOSFilter(BANDPASS_NOTCH, 2)(x)
    assert np.max(np.abs(y)) < 1e-6


@settings(max_examples=40, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 600), min_size=0, max_size=12),
    nan_at=st.lists(st.integers(0, 599), max_size=5),
    init=st.sampled_from(["steady", "zeros"]),
)
@pytest.mark.parametrize("n_channels", [3, 11])
def test_chunk_invariance_bit_for_bit(n_channels, cuts, nan_at, init):
    x = _signal((n_channels, 600), seed=9)
    for i in nan_at:
        x[i % n_channels, i] = np.nan
    whole = SOSFilter(BANDPASS_NOTCH, n_channels, init=init)(x)
    f = SOSFilter(BANDPASS_NOTCH, n_channels, init=init)
    bounds = [0, *sorted(cuts), 600]
    parts = [f(np.ascontiguousarray(x[:, a:b])) for a, b in zip(bounds[:-1], bounds[1:])]
    assert np.array_equal(np.concatenate(parts, axis=1), whole)
    assert not np.isnan(whole).any()


@settings(max_examples=25, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 500), max_size=8),
    nan_at=st.lists(st.integers(0, 499), max_size=5),
)
def test_filterbank_chunk_invariance(cuts, nan_at):
    types = ["eeg", "eog", "emg", "ecg", "misc"]
    x = _signal((5, 500), seed=10)
    for i in nan_at:
        x[i % 5, i] = np.nan
    whole = FilterBank(types, FS)(x)
    bank = FilterBank(types, FS)
    bounds = [0, *sorted(cuts), 500]
    parts = [bank(np.ascontiguousarray(x[:, a:b])) for a, b in zip(bounds[:-1], bounds[1:])]
    assert np.array_equal(np.concatenate(parts, axis=1), whole)


def test_offline_equals_streaming():
    x = _signal((4, 1500), seed=11)
    f = SOSFilter(BANDPASS_NOTCH, 4, init="zeros")
    assert np.array_equal(f(x), sosfilt(BANDPASS_NOTCH, x))


# --------------------------------------------------------------------------- edge cases
def test_empty_one_sample_one_channel():
    f = SOSFilter(BANDPASS_NOTCH, 1)
    x = _signal((1, 50), seed=12)
    assert f(np.empty((1, 0))).shape == (1, 0)
    first = f(x[:, :1])
    assert first.shape == (1, 1)
    rest = f(x[:, 1:])
    assert f(np.empty((1, 0))).shape == (1, 0)
    assert np.array_equal(np.concatenate([first, rest], axis=1), SOSFilter(BANDPASS_NOTCH, 1)(x))
    assert sosfilt(BANDPASS_NOTCH, np.empty((3, 0))).shape == (3, 0)
    y, zf = sosfilt(BANDPASS_NOTCH, np.empty((2, 0)), zi=np.ones((5, 2, 2)))
    assert y.shape == (2, 0) and np.array_equal(zf, np.ones((5, 2, 2)))
    _close(sosfilt(BANDPASS_NOTCH, x[0]), ss.sosfilt(BANDPASS_NOTCH, x[0]), x)


def test_non_contiguous_and_fortran_inputs():
    x = _signal((4, 800), seed=13)
    ref = SOSFilter(BANDPASS_NOTCH, 4)(x[:, ::2].copy())
    assert np.array_equal(SOSFilter(BANDPASS_NOTCH, 4)(x[:, ::2]), ref)
    assert np.array_equal(
        SOSFilter(BANDPASS_NOTCH, 4)(np.asfortranarray(x)), SOSFilter(BANDPASS_NOTCH, 4)(x)
    )
    assert np.array_equal(
        SOSFilter(BANDPASS_NOTCH, 4)(x.astype(np.float32)),
        SOSFilter(BANDPASS_NOTCH, 4)(x.astype(np.float32).astype(np.float64)),
    )
    _close(sosfilt(BANDPASS_NOTCH, np.asfortranarray(x)), ss.sosfilt(BANDPASS_NOTCH, x), x)
    _close(sosfilt(BANDPASS_NOTCH, x[::2, ::3]), ss.sosfilt(BANDPASS_NOTCH, x[::2, ::3]), x)
    _close(sosfiltfilt(BANDPASS_NOTCH, x.T, axis=0), ss.sosfiltfilt(BANDPASS_NOTCH, x.T, axis=0), x)
    frozen = x.copy()
    frozen.setflags(write=False)  # e.g. a view of a received buffer
    assert np.array_equal(SOSFilter(BANDPASS_NOTCH, 4)(frozen), SOSFilter(BANDPASS_NOTCH, 4)(x))
    lists = x[:, :10].tolist()
    assert np.array_equal(
        SOSFilter(BANDPASS_NOTCH, 4)(lists), SOSFilter(BANDPASS_NOTCH, 4)(x[:, :10])
    )


def test_out_argument_and_in_place():
    x = _signal((3, 300), seed=14)
    ref = SOSFilter(BANDPASS_NOTCH, 3)(x)
    out = np.empty_like(x)
    assert SOSFilter(BANDPASS_NOTCH, 3)(x, out=out) is out
    assert np.array_equal(out, ref)
    xi = x.copy()
    SOSFilter(BANDPASS_NOTCH, 3)(xi, out=xi)
    assert np.array_equal(xi, ref)
    with pytest.raises(ValueError, match="out must be"):
        SOSFilter(BANDPASS_NOTCH, 3)(x, out=np.empty((3, 299)))
    with pytest.raises(TypeError, match="out must be"):
        SOSFilter(BANDPASS_NOTCH, 3)(x, out=np.empty((3, 300), np.float32))


def test_nan_is_held_and_never_poisons_the_state():
    x = _signal((2, 400), seed=15)
    bad = x.copy()
    bad[0, 100:110] = np.nan
    bad[1, 200] = np.inf
    f = SOSFilter(BANDPASS_NOTCH, 2)
    y = f(bad)
    assert f.held == 11
    assert np.isfinite(y).all()
    held = bad.copy()
    held[0, 100:110] = held[0, 99]
    held[1, 200] = held[1, 199]
    assert np.array_equal(y, SOSFilter(BANDPASS_NOTCH, 2)(held))
    assert np.isfinite(f.zi).all()
    assert f(x[:, :5]).shape == (2, 5) and f.held == 0


def test_leading_nan_outputs_zero_until_first_finite_sample():
    x = _signal((2, 300), seed=16)
    bad = x.copy()
    bad[1, :40] = np.nan
    f = SOSFilter(BANDPASS_NOTCH, 2)
    y1 = f(bad[:, :25])
    assert not f.started[1] and f.started[0]
    y2 = f(bad[:, 25:])
    y = np.concatenate([y1, y2], axis=1)
    assert np.all(y[1, :40] == 0.0)
    assert np.array_equal(y[1, 40:], SOSFilter(BANDPASS_NOTCH, 1)(x[1:, 40:])[0])
    assert np.array_equal(y[0], SOSFilter(BANDPASS_NOTCH, 1)(x[:1])[0])
    f.reset()
    assert not f.started.any() and f.held == 0


@pytest.mark.parametrize("per_channel", [False, True])
def test_state_overflow_restarts_channel(per_channel):
    hp = ss.butter(2, 100.0, "highpass", fs=FS, output="sos")
    sos = np.stack([hp, ss.butter(2, 90.0, "highpass", fs=FS, output="sos")]) if per_channel else hp
    f = SOSFilter(sos, 2)
    huge = np.array([0.0] + [1.7e308, -1.7e308] * 20)
    f(np.vstack([np.zeros_like(huge), huge]))
    assert f.n_restarts == 1 and f.started[0] and not f.started[1]
    y = f(np.ones((2, 10)))
    assert np.isfinite(y).all() and f.started.all()


def test_leading_nan_per_channel_kernel():
    bank = FilterBank(["eeg", "emg", "misc"], FS)
    x = _signal((3, 300), seed=20)
    bad = x.copy()
    bad[1, :50] = np.nan
    bad[2, 10] = np.nan
    y = np.concatenate([bank(bad[:, :30]), bank(bad[:, 30:])], axis=1)
    assert bank.held == 20 and np.all(y[1, :50] == 0.0)
    ref = FilterBank(["emg"], FS)(x[1:2, 50:])[0]
    assert np.array_equal(y[1, 50:], ref)
    assert y[2, 10] == x[2, 9]  # pass-through channel holds too


def test_offline_nan_raises_or_propagates():
    x = _signal((3, 200), seed=17)
    x[2, 50] = np.nan
    with pytest.raises(ValueError, match="signal 2"):
        sosfilt(BANDPASS_NOTCH, x)
    with pytest.raises(ValueError, match="NaN"):
        sosfiltfilt(BANDPASS_NOTCH, x)
    y = sosfilt(BANDPASS_NOTCH, x, check_finite=False)
    ref = ss.sosfilt(BANDPASS_NOTCH, x)
    assert np.array_equal(np.isnan(y), np.isnan(ref))
    with pytest.raises(ValueError, match="zi contains"):
        sosfilt(BANDPASS_NOTCH, x[:2], zi=np.full((5, 2, 2), np.nan))


@pytest.mark.parametrize(
    ("sos", "exc", "match"),
    [
        (np.ones((2, 5)), ValueError, r"shape \(n_sections, 6\)"),
        (np.empty((0, 6)), ValueError, "no sections"),
        (np.array([[1, 0, 0, 2, 0, 0]]), ValueError, "a0"),
        (np.array([[1, 0, 0, 1, -2.5, 1.5]]), ValueError, "unstable"),
        (np.array([[1, 0, 0, 1, 0, 1.0]]), ValueError, "unstable"),
        (np.array([[1, 0, 0, 1, np.nan, 0]]), ValueError, "NaN"),
        (np.ones((1, 6), complex), TypeError, "real"),
        ("butter", TypeError, "sos"),
    ],
)
def test_bad_sos(sos, exc, match):
    x = np.zeros((1, 10))
    for call in (
        lambda: sosfilt(sos, x),
        lambda: sosfiltfilt(sos, x, padlen=0),
        lambda: SOSFilter(sos, 1),
    ):
        with pytest.raises(exc, match=match):
            call()


def test_bad_inputs():
    f = SOSFilter(BANDPASS_NOTCH, 8)
    with pytest.raises(ValueError, match="built for 8"):
        f(np.zeros((7, 32)))
    with pytest.raises(ValueError, match="2-D"):
        f(np.zeros(32))
    with pytest.raises(ValueError, match="2-D"):
        f(np.zeros((1, 8, 32)))
    with pytest.raises(TypeError, match="real"):
        f(np.zeros((8, 3), complex))
    with pytest.raises(TypeError, match="numeric"):
        f(None)
    with pytest.raises(ValueError, match="positive"):
        SOSFilter(BANDPASS_NOTCH, 0)
    with pytest.raises(ValueError, match="init"):
        SOSFilter(BANDPASS_NOTCH, 1, init="mean")
    with pytest.raises(ValueError, match="zi must have shape"):
        sosfilt(BANDPASS_NOTCH, np.zeros((3, 10)), zi=np.zeros((5, 2, 2)))
    with pytest.raises(ValueError, match="greater than padlen"):
        sosfiltfilt(BANDPASS_NOTCH, np.zeros((2, 20)))
    with pytest.raises(ValueError, match="padtype"):
        sosfiltfilt(BANDPASS_NOTCH, np.zeros((2, 200)), padtype="wrap")
    with pytest.raises(ValueError, match="out of bounds"):
        sosfilt(BANDPASS_NOTCH, np.zeros((2, 20)), axis=2)
    with pytest.raises(TypeError, match="complex"):
        sosfilt(BANDPASS_NOTCH, np.zeros((2, 20), complex))
    with pytest.raises(TypeError, match="float32 or float64"):
        sosfilt(BANDPASS_NOTCH, np.zeros((2, 20), np.longdouble))
    with pytest.raises(ValueError, match="scalar"):
        sosfilt(BANDPASS_NOTCH, 3.0)


def test_per_channel_cascades_and_equality():
    a = ss.butter(2, 10.0, fs=FS, output="sos")
    b = ss.butter(2, 30.0, fs=FS, output="sos")
    x = _signal((2, 300), seed=18)
    f = SOSFilter(np.stack([a, b]), 2, init="zeros")
    y = f(x)
    _close(y[0], ss.sosfilt(a, x[0]), x)
    _close(y[1], ss.sosfilt(b, x[1]), x)
    assert f == SOSFilter(np.stack([a, b]), 2, init="zeros")
    assert f != SOSFilter(np.stack([a, a]), 2, init="zeros")
    assert "2 channels" in repr(f)
    with pytest.raises(ValueError, match="n_channels"):
        SOSFilter(np.stack([a, b]), 3)


# --------------------------------------------------------------------------- filter bank
def _gain(bank_or_sos, f, fs=FS):
    sos = bank_or_sos
    _, h = ss.sosfreqz(sos, worN=[f], fs=fs)
    return float(np.abs(h[0]))


def test_filterbank_chains():
    bank = FilterBank(["eeg", "eog", "emg", "ecg", "misc"], FS, mains=50.0)
    sos = bank.sos
    assert sos.shape[0] == 5
    assert _gain(sos[0], 10.0) == pytest.approx(1.0, abs=0.02)
    assert _gain(sos[0], 50.0) < 1e-3
    assert _gain(sos[1], 5.0) == pytest.approx(1.0, abs=0.05)
    assert _gain(sos[1], 30.0) < 0.05
    assert _gain(sos[2], 60.0) == pytest.approx(1.0, abs=0.05)
    assert _gain(sos[2], 50.0) < 1e-3 and _gain(sos[2], 100.0) < 1e-3  # harmonic notch
    assert _gain(sos[2], 2.0) < 0.01
    assert _gain(sos[3], 10.0) == pytest.approx(1.0, abs=0.02)
    assert _gain(sos[4], 33.0) == 1.0  # misc: identity
    x = _signal((5, 1000), seed=19)
    y = bank(x)
    assert np.array_equal(y[4], x[4])
    assert "eeg" in repr(bank)


def test_filterbank_options_and_errors():
    sos = design_chain((10.0, 100.0), 200.0, 60.0)
    assert _gain(sos, 95.0, fs=200.0) < 0.75  # upper edge clamped to 0.45 * sfreq = 90 Hz
    assert _gain(sos, 60.0, fs=200.0) < 1e-3
    assert design_chain((0.3, 35.0), FS, None).shape == (4, 6)
    assert design_chain(None, FS).shape == (0, 6)
    bank = FilterBank(["eeg"], FS, mains=None, bands={"eeg": (1.0, 20.0)})
    assert bank.sos.shape == (1, 4, 6)
    assert _gain(bank.sos[0], 40.0) < 0.1
    with pytest.raises(ValueError, match="mains"):
        FilterBank(["eeg"], FS, mains=55.0)
    with pytest.raises(ValueError, match="empty"):
        FilterBank([], FS)
    with pytest.raises(TypeError, match="sequence"):
        FilterBank("eeg", FS)
    with pytest.raises(ValueError, match="positive"):
        FilterBank(["eeg"], -1.0)
    with pytest.raises(ValueError, match="not usable"):
        FilterBank(["emg"], 16.0)


def test_filterbank_filtfilt_zero_phase():
    bank = FilterBank(["eeg", "misc"], FS)
    t = np.arange(int(60 * FS)) / FS
    x = np.vstack([100 * np.sin(2 * np.pi * 8 * t), np.ones_like(t)])
    y = bank.filtfilt(x)
    _close(y[0], ss.sosfiltfilt(bank.chains["eeg"], x[0]), x)
    core = slice(int(20 * FS), int(40 * FS))  # away from the 0.3-Hz edge transients
    assert np.max(np.abs(y[0, core] - x[0, core])) < 0.5
    assert np.array_equal(y[1], x[1])
    with pytest.raises(ValueError, match="shape"):
        bank.filtfilt(x[:1])


def test_public_api():
    for name in (
        "sosfilt",
        "sosfiltfilt",
        "SOSFilter",
        "FilterBank",
        "Resampler",
        "resample_poly",
        "spectral",
        "quality",
        "epoch_quality",
        "bandpower",
    ):
        assert hasattr(dsp, name)
