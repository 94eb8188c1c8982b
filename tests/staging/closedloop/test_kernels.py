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


def _eeg_shifts_python(logp, bad, ring, ring_ok, state, min_ok, shift, theta_shift, spindle):
    # the original frame loop of the arousal detector (numpy lower median of the ring)
    pos, in_run, gap = int(state[0]), bool(state[2]), int(state[3])
    out = []
    for i in range(logp.shape[0]):
        n_ok = int(np.count_nonzero(ring_ok))
        shifted, score = False, (0.0, "alpha")
        if not bad[i] and n_ok >= min_ok and n_ok > 0:
            a = ring[ring_ok]
            bg = np.partition(a, (n_ok - 1) // 2, axis=0)[(n_ok - 1) // 2]
            th, al, si, be = logp[i] - bg
            cand = max((al, "alpha"), (be, "beta"))
            if not si > max(al, be) + spindle and (cand[0] > shift or th > theta_shift):
                shifted = True
                score = cand if cand[0] >= th else (th, "theta")
        closes = False
        if shifted:
            gap, in_run = 0, True
        elif in_run:
            gap += 1
            if gap > 1 or bad[i]:
                closes, in_run, gap = True, False, 0
        ring[pos] = logp[i]
        ring_ok[pos] = not bad[i] and not shifted and not in_run
        pos = (pos + 1) % ring.shape[0]
        out.append((shifted, float(score[0]) if shifted else 0.0, score[1], n_ok, closes))
    return out, (pos, int(np.count_nonzero(ring_ok)), int(in_run), gap)


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 120),
    n_bg=st.integers(1, 25),
    cut=st.integers(0, 120),
    bad_frac=st.sampled_from([0.0, 0.05, 0.3]),
    seed=st.integers(0, 2**16),
)
def test_eeg_shifts_is_the_python_original_whatever_the_cut(n, n_bg, cut, bad_frac, seed):
    rng = np.random.default_rng(seed)
    logp = rng.normal(0.0, 0.4, (n, 4))
    for start in rng.integers(0, n, 4):  # bursts of 2-10 frames: alpha, beta, theta or sigma
        logp[start : start + rng.integers(2, 10), rng.integers(0, 4)] += rng.uniform(0.5, 3.0)
    logp = np.round(logp, 2)  # ties in the medians and the comparisons
    bad = rng.random(n) < bad_frac
    args = (n_bg // 2, 1.5, 2.0, 0.75)
    ring0, ok0 = np.zeros((n_bg, 4)), np.zeros(n_bg, bool)
    want, want_state = _eeg_shifts_python(logp, bad, ring0.copy(), ok0.copy(), [0, 0, 0, 0], *args)
    ring, ok, state = ring0.copy(), ok0.copy(), np.zeros(4, np.int64)
    got = []
    cut = min(cut, n)
    for a, b in ((0, cut), (cut, n)):  # two calls, the state carried: the same frames
        res = _kernels.eeg_shifts(logp[a:b], bad[a:b], ring, ok, state, *args)
        bands = {_kernels.ALPHA: "alpha", _kernels.BETA: "beta", _kernels.THETA: "theta"}
        got += [
            (bool(s), float(sc), bands[int(bd)] if s else "alpha", int(k), bool(c))
            for s, sc, bd, k, c in zip(*res)
        ]
    assert got == want
    assert tuple(state.tolist()) == want_state


def test_eeg_shifts_finds_a_known_alpha_burst():
    # 20 flat frames fill the background, then alpha +2 for 6 frames, then flat again
    logp = np.zeros((40, 4))
    logp[20:26, 1] = 2.0
    ring, ok, state = np.zeros((20, 4)), np.zeros(20, bool), np.zeros(4, np.int64)
    shifted, score, band, n_ok, closes = _kernels.eeg_shifts(
        logp, np.zeros(40, bool), ring, ok, state, 10, 1.5, 2.0, 0.75
    )
    assert np.flatnonzero(shifted).tolist() == list(range(20, 26))
    assert (score[20:26] == 2.0).all() and (band[20:26] == _kernels.ALPHA).all()
    assert np.flatnonzero(closes).tolist() == [27]  # the second frame without the shift
    assert n_ok[20] == 20 and state[_kernels.S_IN_RUN] == 0


def _running_median_state(n):
    return np.zeros(n), np.zeros(n), np.zeros(5, np.int64)


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(
        st.floats(0.0, 50.0, allow_nan=False)
        | st.just(float("nan"))
        | st.integers(0, 3).map(float),
        min_size=1,
        max_size=120,
    ),
    n=st.integers(1, 25),
)
def test_running_median_is_numpy_median_of_the_last_n(values, n):
    ring, srt, ist = _running_median_state(n)
    for i, v in enumerate(values):
        got = _kernels.running_median(ring, srt, ist, v)
        want = np.median(values[max(0, i + 1 - n) : i + 1])
        assert got == want or (np.isnan(got) and np.isnan(want))


def _eye_movements_numpy(y, bad, first, fs, min_slope, factor, refr, n_noise):
    # the original: slopes, whole seconds, numpy's median of each second, numpy's median of
    # the last n_noise of those for the next second's threshold, then the refractory period
    slope = np.abs(np.diff(np.concatenate(([0.0], y)))) * fs
    slope[bad] = 0.0
    sec = max(1, int(round(fs)))
    meds, med, last, events = [], np.inf, -np.inf, []
    for s in range(0, slope.size - sec + 1, sec):
        row = slope[s : s + sec]
        thr = max(min_slope, factor * med)
        for i in np.flatnonzero(row > thr).tolist():
            if first + s + i - last >= refr:
                events.append(first + s + i)
                last = first + s + i
        meds.append(float(np.median(row)))
        med = float(np.median(meds[-n_noise:]))
    return events


@settings(max_examples=80, deadline=None)
@given(
    fs=st.sampled_from([8.0, 100.0, 128.0, 256.0]),
    n_sec=st.integers(0, 40),
    extra=st.integers(0, 300),
    n_noise=st.integers(1, 12),
    cuts=st.lists(st.integers(1, 700), min_size=1, max_size=5),
    nan_at=st.none() | st.integers(0, 10_000),
    bad_frac=st.sampled_from([0.0, 0.05, 0.5]),
    first=st.integers(0, 10**9),
    seed=st.integers(0, 2**16),
)
def test_eye_movements_is_the_numpy_original_whatever_the_chunking(
    fs, n_sec, extra, n_noise, cuts, nan_at, bad_frac, first, seed
):
    rng = np.random.default_rng(seed)
    n = n_sec * int(round(fs)) + extra % int(round(fs))
    # a random walk with jumps (eye movements), ties (rounded), flagged samples, a NaN
    y = np.round(rng.normal(0.0, 1.0, n).cumsum() * 4.0)
    y[rng.random(n) < 0.02] += rng.choice([-200.0, 200.0])
    if nan_at is not None and n:
        y[nan_at % n] = np.nan
    bad = rng.random(n) < bad_frac
    args = (fs, 300.0, 5.0, 0.3 * fs)
    want = _eye_movements_numpy(y, bad, first, *args, n_noise)
    part = np.zeros(max(1, int(round(fs))))
    ring, srt, ist = _running_median_state(n_noise)
    fst = np.array([0.0, np.inf, -np.inf])
    got, i, j = [], 0, 0
    while i < n:
        k = cuts[j % len(cuts)]
        got += _kernels.eye_movements(
            y[i : i + k], bad[i : i + k], first + i, *args, part, ring, srt, ist, fst
        ).tolist()
        i, j = i + k, j + 1
    assert got == want


def _movements_numpy(x, first, mg, factor, state):
    # the original, one call: 1-s frames, per-axis max - min, the median of the still seconds
    # kept (numpy's, once per call), then the history of the still seconds
    sec, keep = state["sec"], state["keep"]
    buf = np.concatenate([state["buf"], x], axis=1)
    start = first - state["buf"].shape[1]
    n_fr = buf.shape[1] // sec
    state["buf"] = buf[:, n_fr * sec :]
    if not n_fr:
        return []
    frames = buf[:, : n_fr * sec].reshape(buf.shape[0], n_fr, sec)
    ptp = np.max(frames.max(axis=-1) - frames.min(axis=-1), axis=0)
    hist = state["hist"]
    med = np.median(hist) if hist.size >= 10 else np.inf
    moving = (ptp > mg) & (ptp > factor * med)
    signs = []
    for k, m in enumerate(moving):
        if m and not state["run"]:
            signs.append(start + k * sec)
        state["run"] = bool(m)
    state["hist"] = np.concatenate([hist, ptp[~moving]])[-keep:]
    return signs


@settings(max_examples=80, deadline=None)
@given(
    n_ax=st.integers(1, 3),
    sec=st.integers(1, 40),
    n=st.integers(0, 1500),
    keep=st.integers(1, 70),
    cuts=st.lists(st.integers(1, 300), min_size=1, max_size=5),
    nan_at=st.none() | st.integers(0, 10_000),
    first=st.integers(0, 10**9),
    seed=st.integers(0, 2**16),
)
def test_movements_is_the_numpy_original(n_ax, sec, n, keep, cuts, nan_at, first, seed):
    rng = np.random.default_rng(seed)
    # breathing sway of a few milli-g (rounded: ties), body movements of hundreds, a NaN
    x = np.round(rng.normal(0.0, 3.0, (n_ax, n)))
    for t in rng.integers(0, max(n, 1), 6):
        x[rng.integers(n_ax), t : t + 2 * sec] += rng.uniform(-400.0, 400.0)
    if nan_at is not None and n:
        x.flat[nan_at % x.size] = np.nan
    part, hist, ist = np.zeros((n_ax, sec)), np.zeros(keep), np.zeros(3, np.int64)
    state = {"sec": sec, "keep": keep, "buf": np.zeros((n_ax, 0)), "hist": np.zeros(0),
             "run": False}  # fmt: skip
    got, want, i, j = [], [], 0, 0
    while i < n:
        k = cuts[j % len(cuts)]
        got += _kernels.movements(x[:, i : i + k], first + i, 50.0, 5.0, part, hist, ist).tolist()
        want += _movements_numpy(x[:, i : i + k], first + i, 50.0, 5.0, state)
        i, j = i + k, j + 1
    assert got == want
    assert ist[2] == state["hist"].size
    np.testing.assert_array_equal(hist[: ist[2]], state["hist"])


def test_movements_finds_a_known_movement():
    # 30 still seconds (±2 mg), then one second swinging 300 mg: one sign, at its first sample
    sec = 10
    x = np.tile(np.array([[-2.0, 2.0]]), (1, 150))
    x = np.concatenate([x, np.full((1, sec), 300.0), np.zeros((1, sec))], axis=1)
    x[0, 300 + sec - 1] = -10.0
    part, hist, ist = np.zeros((1, sec)), np.zeros(60), np.zeros(3, np.int64)
    # the median of the still seconds is taken once per call, from the seconds before it
    assert _kernels.movements(x[:, :300], 1000, 50.0, 5.0, part, hist, ist).tolist() == []
    assert ist[2] == 30 and ist[1] == 0
    signs = _kernels.movements(x[:, 300:], 1300, 50.0, 5.0, part, hist, ist)
    assert signs.tolist() == [1000 + 300]
    assert ist[2] == 31  # the still second after it joins the history
