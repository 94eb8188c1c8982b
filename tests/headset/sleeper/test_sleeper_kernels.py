"""The sleeper's kernels and fast paths against the numpy expressions they replace, bit for bit."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from headset.sleeper import CHANNELS, Sleeper
from headset.sleeper import waveforms as wf
from headset.sleeper._kernels import (
    add_held,
    add_leak,
    beat_onsets,
    clip_at_rail,
    column_means,
    cumulative_rate,
    heart_rate,
    mix_eeg,
    ramp_phase,
    scatter_scaled,
)
from headset.sleeper.sleeper import _RAMP_S as RAMP_S

SEEDS = st.integers(0, 2**32 - 1)


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, n_streams=st.integers(1, 5), n_bins=st.integers(1, 40))
def test_scatter_scaled_equals_numpy(seed, n_streams, n_bins):
    rng = np.random.default_rng(seed)
    amp = rng.exponential(1.0, (n_streams, n_bins)).astype(np.float32)
    active = np.flatnonzero(rng.random(n_streams * n_bins) < 0.6)
    draw = rng.standard_normal(2 * active.size, dtype=np.float32)
    # the numpy expression: complex draws times real amplitudes, scattered into zeros
    want = np.zeros(n_streams * n_bins, dtype=np.complex64)
    want[active] = draw.view(np.complex64) * amp.ravel()[active]
    got = np.zeros((n_streams, n_bins), dtype=np.complex64)
    scatter_scaled(draw, amp.ravel()[active], active, got.reshape(-1).view(np.float32))
    assert np.array_equal(got.view(np.uint32).ravel(), want.view(np.uint32))
    assert not got.ravel()[np.setdiff1d(np.arange(n_streams * n_bins), active)].any()


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, n=st.integers(0, 50), n_ops=st.integers(0, 12))
def test_add_leak_equals_numpy(seed, n, n_ops):
    rng = np.random.default_rng(seed)
    buf = rng.normal(0.0, 50.0, (6, n + 7))
    to = rng.integers(0, 4, n_ops)
    frm = rng.integers(0, 6, n_ops)
    gain = rng.normal(0.0, 0.5, n_ops)
    want = buf[:4, :n].copy()
    for t, f, g in zip(to, frm, gain):
        want[t] += g * buf[f, :n]
    got = buf[:4, :n].copy()
    add_leak(buf, n, to, frm, gain, got)
    assert np.array_equal(got, want)


def mix_eeg_numpy(x, ex, ga, gb, gmu, a, nm, eo, mv, day, talk, wa, wb, wm, hm, rows, buf):
    """The EEG group mixing as numpy whole-array expressions (the sleeper's former code)."""
    k = rows.size
    alpha = ga * ex * (1.0 - 0.85 * eo)
    alpha = np.maximum(alpha, wa * (0.8 * a + 0.45 * nm))
    beta = gb * (1.0 + eo) + wb * (1.2 * a + 1.3 * nm)
    muscle = gmu * (1.0 + 1.5 * eo)
    muscle += wm * (a + 0.5 * nm + 2.0 * mv)
    muscle += wm * (0.8 * day + talk)
    high = (beta + muscle) / hm
    out = x[:k] * (1.0 - 0.3 * a) + x[k : 2 * k] * alpha + x[2 * k : 3 * k] * high
    buf[list(rows), : ex.size] += out


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, n=st.integers(1, 64), rows=st.lists(st.integers(0, 9), max_size=5, unique=True))
def test_mix_eeg_equals_numpy(seed, n, rows):
    rng = np.random.default_rng(seed)
    rows = np.array(rows, dtype=np.int64)
    x = rng.normal(0.0, 10.0, (3 * rows.size + 1, n))
    ex = np.exp(0.45 * x[-1] - 0.1)
    g = rng.uniform(0.0, 20.0, (n, 6))  # columns, as the stage gains (non-contiguous)
    # intensities: mostly 0 or 1 with ramps between, as the sleeper's envelopes
    inten = np.clip(rng.normal(0.3, 0.6, (6, n)), 0.0, 1.0)
    args = (g[:, 3], g[:, 4], g[:, 5], *inten, 9.0, 2.5, 3.1, float(np.float32(1.7)), rows)
    want = rng.normal(0.0, 5.0, (12, n + 3))
    got = want.copy()
    mix_eeg_numpy(x, ex, *args, want)
    mix_eeg(x, ex, *args, got)
    assert np.array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, n=st.integers(1, 300), p_neg=st.floats(0.0, 1.0))
def test_cumulative_rate_equals_numpy(seed, n, p_neg):
    rng = np.random.default_rng(seed)
    rate = rng.exponential(5.0, n) * np.where(rng.random(n) < p_neg, -1.0, 1.0)
    rate[rng.random(n) < 0.3] = 0.0
    assert np.array_equal(
        cumulative_rate(rate, 60.0 * 256), np.cumsum(np.maximum(rate, 0.0)) / (60.0 * 256)
    )


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, n=st.integers(1, 3000), m=st.integers(2, 8))
def test_column_means_equal_numpy(seed, n, m):
    rng = np.random.default_rng(seed)
    x = rng.random((n, m)) * 10.0 ** rng.uniform(-3, 3, (n, m))  # spread: order matters
    assert np.array_equal(column_means(x), x.mean(axis=0))
    assert np.array_equal(column_means(x[:, ::-1]), x[:, ::-1].mean(axis=0))  # not C-ordered


def intensities(rng, n):
    """Arousal-like intensities: ramps between 0 and 1."""
    return np.clip(rng.normal(0.2, 0.6, n), 0.0, 1.0)


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, n=st.integers(1, 3000), sfreq=st.sampled_from([100.0, 256.0, 512.0]))
def test_heart_kernels_equal_numpy(seed, n, sfreq):
    """Breathing phase, heart rate and beat onsets as the heart's former numpy expressions."""
    rng = np.random.default_rng(seed)
    factor = rng.uniform(0.9, 1.2, n)
    nm, a, mv = intensities(rng, n), intensities(rng, n), intensities(rng, n)
    phase, lf0, lf1 = rng.random(), rng.normal(0.0, 0.1), rng.normal(0.0, 0.1)
    ramp = np.arange(n) / n
    rlf = lf0 + (lf1 - lf0) * ramp
    rate = 15.0 * factor * (1.0 + rlf)
    rate = rate + 6.0 * nm + 2.0 * a
    want = phase + np.cumsum(rate / 60.0 / sfreq)
    got = ramp_phase(phase, 15.0, factor, lf0, lf1, nm, 6.0, a, 2.0, sfreq)
    assert np.array_equal(got, want)

    resp = np.sin(2 * np.pi * want)
    offset = rng.uniform(-9.0, 0.0, n)
    lf0, lf1 = rng.normal(0.0, 3.0), rng.normal(0.0, 3.0)
    lf = lf0 + (lf1 - lf0) * ramp
    nm_gain = float(rng.choice([0.0, 30.0, 200.0]))  # 200: above the clip in a nightmare
    hr = 62.0 + offset + lf + 4.0 * resp
    hr = hr + 9.0 * a + 10.0 * mv + nm_gain * nm
    want_hr = np.clip(hr, 35.0, 190.0)
    got_hr = heart_rate(62.0, offset, lf0, lf1, 4.0, resp, a, mv, nm_gain, nm)
    assert np.array_equal(got_hr, want_hr)

    bphase = phase + np.cumsum(want_hr / 60.0 / sfreq)
    want_starts = np.flatnonzero(np.diff(np.floor(np.concatenate([[0.0], bphase]))) > 0)
    starts, last = beat_onsets(phase, want_hr, sfreq)
    assert np.array_equal(starts, want_starts) and last == bphase[-1]


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, n=st.integers(0, 80), rows=st.lists(st.integers(0, 5), max_size=6, unique=True))
def test_clip_at_rail_equals_numpy(seed, n, rows):
    rng = np.random.default_rng(seed)
    out = rng.normal(0.0, 150.0, (6, n))
    out[rng.random((6, n)) < 0.1] = 100.0  # exactly at the rail
    out[rng.random((6, n)) < 0.05] = -np.inf
    flags = rng.integers(0, 4, (6, n)).astype(np.uint8)
    want, want_flags = out.copy(), flags.copy()
    for r in rows:
        over = np.abs(want[r]) >= 100.0
        np.clip(want[r], -100.0, 100.0, out=want[r])
        want_flags[r, over] |= 8
    clip_at_rail(out, flags, np.array(rows, dtype=np.int64), 100.0, 8)
    assert np.array_equal(out, want) and np.array_equal(flags, want_flags)


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, n_readings=st.integers(0, 40), hold=st.integers(1, 12))
def test_add_held_equals_numpy_repeat(seed, n_readings, hold):
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 500.0, (n_readings, 3))
    buf = rng.normal(0.0, 1.0, (5, n_readings * hold + 4))
    want = buf.copy()
    held = np.repeat(values, hold, axis=0)
    for k, row in enumerate((4, 1, 2)):
        want[row, : n_readings * hold] += held[:, k]
    add_held(buf, np.array([4, 1, 2], dtype=np.int64), values, hold)
    assert np.array_equal(buf, want)


def test_every_channel_is_the_same_whatever_the_montage():
    """Derivations that are not output are not rendered: those that are do not change."""
    kw = dict(profile="nightmare-prone", seed=4, duration_s=90.0)
    full = Sleeper(montage=tuple(CHANNELS), **kw).read(10**6).data
    for names in (("EEG Pz-Oz",), ("EOG E2-M2", "ACC Y"), ("EEG Cz-M1", "EMG chin", "EEG F3-M2")):
        sub = Sleeper(montage=names, **kw).read(10**6).data
        assert np.array_equal(sub, full[[list(CHANNELS).index(c) for c in names]]), names


def test_stage_mix_equals_the_per_sample_formula():
    """Every pair of stages, every block of the epoch (ramps of 3-20 s, over or not)."""
    stages = [x for a in range(5) for b in range(5) for x in (a, b)]  # every transition
    s = Sleeper(seed=2, hypnogram=stages)
    hyp, el, fs, n = s.hypnogram, s._epoch_len, s.sfreq, s._block
    for start in range(0, s.n_samples, n):
        idx = np.arange(start, start + n)
        ep = idx // el
        cur, prev = hyp[ep].astype(np.int64), hyp[np.maximum(ep - 1, 0)].astype(np.int64)
        u = np.clip((idx - ep * el) / fs / RAMP_S[prev, cur], 0.0, 1.0)
        u = 0.5 - 0.5 * np.cos(np.pi * u)
        want = np.zeros((n, 5))
        want[np.arange(n), prev] += 1.0 - u
        want[np.arange(n), cur] += u
        got, stages = s._mix_weights(start, n)
        assert np.array_equal(got, want), start
        assert not got[:, [k for k in range(5) if k not in stages]].any()


def test_stage_products_equal_the_matrix_products():
    """The one-stage shortcut of BlockContext.stage_rate/stage_mean gives the products bit for
    bit, on every block of every transition, with the tables the generators use."""
    from headset.sleeper.context import BlockContext
    from headset.sleeper.heart import HR_OFFSET, RESP_FACTOR

    stages = [x for a in range(5) for b in range(5) for x in (a, b)]
    s = Sleeper(profile="nightmare-prone", seed=3, hypnogram=stages)
    tables = [RESP_FACTOR, HR_OFFSET, s._emg.tone, s._eeg.gain]
    zero = np.zeros(s._block)
    one_stage = 0
    for start in range(0, s.n_samples, s._block):
        w, mix = s._mix_weights(start, s._block)
        one_stage += len(mix) == 1
        ctx = BlockContext(0, start, s._block, s._tail, s.sfreq, mix[-1], w, mix, *[zero] * 7,
                           1.0, np.random.default_rng(0))  # fmt: skip
        for table in tables:
            assert np.array_equal(ctx.stage_rate(table), w @ table)
        assert np.array_equal(ctx.stage_mean(s._eeg.ap_psd), column_means(w) @ s._eeg.ap_psd)
    assert 0 < one_stage < s.n_samples // s._block


@settings(max_examples=60, deadline=None)
@given(
    sfreq=st.sampled_from([100.0, 256.0, 500.0]),
    amp=st.floats(-300.0, 300.0),
    rise=st.floats(0.01, 4.0),
    decay=st.floats(0.05, 2.0),
    hold=st.floats(0.0, 1.0),
)
def test_eye_movement_equals_the_whole_array_formula(sfreq, amp, rise, decay, hold):
    """The rise and the relaxation are evaluated only where they act."""
    t = np.arange(max(int(round((rise * 1.5 + hold + 4.0 * decay) * sfreq)), 2)) / sfreq
    up = 0.5 - 0.5 * np.cos(np.pi * np.clip(t / (1.25 * rise), 0.0, 1.0))
    t_off = 1.25 * rise + hold
    down = np.where(t > t_off, np.exp(-(t - t_off) / decay), 1.0)
    want = wf._taper(amp * up * down, sfreq, 0.2)
    assert np.array_equal(wf.eye_movement(sfreq, amp, rise, decay, hold), want)
