"""The numba loops of the closed-loop detectors against their numpy originals (tolerance zero)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from staging.closedloop import _kernels


def _emg_bursts_numpy(allr, n_bg, gap, min_ok, ratio, need, run):
    # the vectorised original: every window sorted, NaN last, the lower median of the finite
    n = allr.size - n_bg
    win = np.lib.stride_tricks.sliding_window_view(allr[: -gap or None], n_bg - gap)[:n]
    n_ok = np.count_nonzero(np.isfinite(win), axis=1)
    srt = np.sort(win, axis=1)
    bg = srt[np.arange(n), np.maximum(n_ok - 1, 0) // 2]
    with np.errstate(invalid="ignore"):
        above = (n_ok >= min_ok) & (allr[n_bg:] > ratio * bg)
    hits = []
    for i in range(n):
        run = run + 1 if above[i] else 0
        if run == need:
            hits.append(i)
    return run, hits


@settings(max_examples=150, deadline=None)
@given(
    n_bg=st.integers(1, 45),
    gap_frac=st.floats(0.0, 0.95),
    n=st.integers(0, 60),
    nan_frac=st.sampled_from([0.0, 0.1, 0.6, 1.0]),
    need=st.integers(1, 6),
    run=st.integers(0, 8),
    ratio=st.sampled_from([1.0, 1.5, 2.0]),
    seed=st.integers(0, 2**16),
)
def test_emg_bursts_is_the_numpy_original(n_bg, gap_frac, n, nan_frac, need, run, ratio, seed):
    rng = np.random.default_rng(seed)
    gap = min(n_bg - 1, int(gap_frac * n_bg))
    # log-normal RMS with bursts, ties (rounded values) and flagged (NaN) bins
    allr = np.round(np.exp(rng.normal(1.0, 0.8, n_bg + n)), 1)
    allr[rng.random(allr.size) < nan_frac] = np.nan
    args = (allr, n_bg, gap, n_bg // 2, ratio, need, run)
    got_run, got_hits = _kernels.emg_bursts(*args)
    want_run, want_hits = _emg_bursts_numpy(*args)
    assert got_run == want_run
    assert got_hits.tolist() == want_hits


def test_emg_bursts_finds_a_known_burst():
    # 40 quiet bins (1 µV), then 3 at 5 µV: a burst of need=3 completes at the third
    allr = np.concatenate([np.ones(40), [1.0, 5.0, 5.0, 5.0, 1.0]])
    run, hits = _kernels.emg_bursts(allr, 40, 8, 20, 2.0, 3, 0)
    assert hits.tolist() == [3] and run == 0
    # chunk invariance: the same bins fed in two calls give the same burst
    run1, h1 = _kernels.emg_bursts(allr[:42], 40, 8, 20, 2.0, 3, 0)
    run2, h2 = _kernels.emg_bursts(allr[2:], 40, 8, 20, 2.0, 3, run1)
    assert h1.tolist() == [] and run1 == 1 and h2.tolist() == [1] and run2 == 0
