"""Epoch features and their normalisation (staging/features.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly

from staging.stager import features as F
from staging.stager._kernels import ranked_quartiles


def _eeg(sfreq: float, n_epochs: int = 4, seed: int = 0, alpha: float = 20.0) -> np.ndarray:
    """Pink-ish noise plus a 10-Hz rhythm and a 1-Hz wave, in µV."""
    rng = np.random.default_rng(seed)
    n = int(round(n_epochs * 30 * sfreq))
    t = np.arange(n) / sfreq
    w = np.cumsum(rng.standard_normal(n)) * 0.5
    w -= np.convolve(w, np.ones(101) / 101, mode="same")
    return w + alpha * np.sin(2 * np.pi * 10 * t) + 40 * np.sin(2 * np.pi * 1.0 * t)


def test_column_layout():
    assert len(F.COLUMN_NAMES) == F.N_COLUMNS == len(set(F.COLUMN_NAMES))
    assert len(F.INPUT_NAMES) == F.N_INPUTS
    assert F.EPOCH_SAMPLES == 3000


def test_rate_invariance():
    """The same signal at 100, 200 and 256 Hz gives (nearly) the same features."""
    base = _eeg(1000.0)
    vals = {}
    for sf in (100, 200, 256):
        x = resample_poly(base, sf, 1000)
        vals[sf] = F.continuous_features(x, float(sf)).values
    for sf in (200, 256):
        a, b = vals[100], vals[sf]
        ok = np.isfinite(a) & np.isfinite(b)
        assert np.allclose(a[ok], b[ok], rtol=0.05, atol=0.05)


def test_amplitude_invariance_of_inv_columns():
    x = _eeg(256.0)
    a = F.continuous_features(x, 256.0).values
    b = F.continuous_features(2.0 * x, 256.0).values
    inv = F.INV_COLUMNS
    assert np.allclose(a[:, inv], b[:, inv], atol=1e-6, equal_nan=True)
    # log powers shift by log10(4) exactly
    i = F.COLUMN_NAMES.index("log_alpha")
    assert np.allclose(b[:, i] - a[:, i], np.log10(4.0))


def test_low_rate_marks_high_bands_missing():
    x = resample_poly(_eeg(1000.0), 50, 1000)
    f = F.continuous_features(x, 50.0)
    assert f.valid.all()
    for c in ("log_beta", "log_hi"):
        assert np.isnan(f.values[:, F.COLUMN_NAMES.index(c)]).all()
    assert np.isfinite(f.values[:, F.COLUMN_NAMES.index("log_alpha")]).all()
    assert f.indicators[F.INDICATOR_NAMES.index("has_beta")] == 0


def test_rate_below_minimum_is_refused():
    with pytest.raises(ValueError, match="at least 50"):
        F.epoch_features(np.zeros((1, 30 * 40)), 40.0)


def test_bad_samples_flat_and_nan_epochs():
    x = _eeg(128.0, n_epochs=4)
    x[int(30 * 128) : int(30 * 128) + 2500] = np.nan  # 65 % of epoch 1
    x[2 * 3840 : 3 * 3840] = 3.0  # epoch 2 flat
    bad = np.zeros(x.size, dtype=bool)
    bad[3 * 3840 + 100 : 3 * 3840 + 400] = True  # epoch 3: 8 % bad, still scored
    f = F.continuous_features(x, 128.0, eeg_bad=bad)
    assert f.valid.tolist() == [True, False, False, True]
    assert np.isnan(f.values[1]).all()


def test_block_size_does_not_matter():
    x = _eeg(128.0, n_epochs=5)
    a = F.continuous_features(x, 128.0, block=2).values
    b = F.continuous_features(x, 128.0, block=120).values
    assert np.allclose(a, b, equal_nan=True, rtol=1e-10, atol=1e-10)


def test_trailing_partial_epoch_ignored_and_short_refused():
    x = _eeg(100.0, n_epochs=2)
    assert F.continuous_features(x[:-10], 100.0).n_epochs == 1
    with pytest.raises(ValueError, match="shorter than one"):
        F.continuous_features(x[:2000], 100.0)


def test_eog_emg_features():
    sf = 128.0
    x = _eeg(sf)
    rng = np.random.default_rng(1)
    move = np.repeat(rng.choice([-80.0, 80.0], size=x.size // 64), 64)[: x.size]
    e1, e2 = 0.3 * x + move, 0.3 * x - move
    f = F.continuous_features(x, sf, eog=np.stack([e1, e2]), emg=rng.standard_normal(x.size))
    corr = f.values[:, F.COLUMN_NAMES.index("eog_corr")]
    assert np.all(corr < -0.5)  # anti-phase eye movements
    assert f.indicators.tolist() == [1, 1, 1, 1, 1]
    one = F.continuous_features(x, sf, eog=e1)
    assert np.isnan(one.values[:, F.COLUMN_NAMES.index("eog_corr")]).all()
    assert one.indicators.tolist() == [1, 0, 0, 1, 1]


def test_running_normalizer_is_causal_and_ends_at_offline():
    x = _eeg(100.0, n_epochs=12, seed=3) * np.repeat(np.linspace(0.5, 2, 12), 3000)
    f = F.continuous_features(x, 100.0)
    prior = F.NormPrior.neutral()
    on = F.normalize_online(f, prior)
    # row k only depends on epochs 0..k
    part = F.normalize_online(f.take(slice(0, 7)), prior)
    assert np.array_equal(on[:7], part)
    # the running statistics at the last epoch are the whole-recording ones
    off = F.normalize_offline(f, prior)
    assert np.allclose(on[-1], off[-1])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 60))
def test_running_statistics_are_the_quartiles_of_the_past_finite_values(seed, n):
    # the rows sorted per column (numba: a binary search and a shift, grown in blocks) give at
    # every epoch the order statistics of a sort of the valid epochs so far, each column's
    # non-finite values left out; ties and signed zeros included: the model inputs match
    # exactly
    rng = np.random.default_rng(seed)
    v = np.round(rng.normal(size=(n, F.N_COLUMNS)) * 0.4)  # mostly -1, -0.0, 0.0, 1: ties
    v[rng.random(v.shape) < 0.05] = np.nan
    v[rng.random(v.shape) < 0.02] = -np.inf
    valid = rng.random(n) > 0.2
    z = np.zeros((n, 0))
    f = F.EpochFeatures(v, valid, z, z, z, np.zeros(len(F.INDICATOR_NAMES)))
    n_raw = F.INV_COLUMNS.size + len(F.DEFERRED_NAMES)
    prior = F.NormPrior(
        rng.normal(size=F.N_COLUMNS),
        rng.uniform(0.5, 2, F.N_COLUMNS),
        np.zeros(n_raw),
        np.ones(n_raw),
    )
    norm = F.RunningNormalizer(prior)
    norm._block = 7  # several growths
    got = norm.push(f)
    for k in range(n):
        past = v[: k + 1][valid[: k + 1]]
        ok = np.isfinite(past)
        # each value goes before the equal ones already there: equal values newest first
        s = np.sort(np.where(ok, past, np.inf)[::-1], axis=0, kind="stable")
        if s.shape[0] == 0:
            s = np.full((1, F.N_COLUMNS), np.inf)
        cnt = ok.sum(axis=0)
        cols = np.arange(F.N_COLUMNS)
        ranks = [np.round(p * (np.maximum(cnt, 1) - 1)).astype(int) for p in (0.25, 0.5, 0.75)]
        q = np.stack([s[r, cols] for r in ranks])
        med, scale = F.stats_from_quartiles(q, cnt, prior)
        fk = f.take(slice(k, k + 1))
        want = F._assemble(fk, med, scale, F.deferred_columns(fk, med), prior)[0]
        assert got[k].tobytes() == want.tobytes()  # bit for bit, signed zeros too
    # the one-shot statistics agree (but for the sign of a zero median)
    med, scale = F.robust_stats(v, prior, valid)
    last = F.stats_from_quartiles(
        ranked_quartiles(norm._order, norm._counts, v), norm._counts, prior
    )
    assert np.array_equal(med, last[0]) and np.array_equal(scale, last[1])


def test_running_statistics_widen_their_row_indices_past_65535_epochs():
    norm = F.RunningNormalizer(F.NormPrior.neutral())
    rows = np.zeros((2**16 + 1, F.N_COLUMNS))
    rows[0], rows[1], rows[-1] = 3.0, 1.0, 2.0
    for r in rows:
        norm._values.append(r)
    for r in (0, 1, 2**16):
        norm._insert(r)
    assert norm._order.dtype == np.uint32
    q = ranked_quartiles(norm._order, norm._counts, norm._values.values)
    assert np.array_equal(q, np.repeat([[1.0], [2.0], [3.0]], F.N_COLUMNS, axis=1))


def test_growing_rows_keep_every_row_in_blocks():
    rows = F.GrowingRows(np.float32, 3)
    assert len(rows) == 0 and rows.values.shape == (0,)
    for i in range(8):
        rows.append([i, -i])
    assert rows.values.shape == (8, 2) and rows.values.dtype == np.float32
    assert rows.values[:, 1].tolist() == [-i for i in range(8)]
    assert rows._a.shape[0] == 9  # three blocks of three
    rows.clear()
    assert len(rows) == 0 and rows._a.size == 0
    rec = F.GrowingRows(np.dtype([("t", np.float64), ("s", np.int8)]), 2)
    rec.append((1.5, -1))
    rec.append((3.0, 4))
    assert rec.values.tolist() == [(1.5, -1), (3.0, 4)]
    with pytest.raises(ValueError, match="block must be at least 1 row"):
        F.GrowingRows(bool, 0)


@settings(max_examples=15, deadline=None)
@given(
    sfreq=st.sampled_from([50.0, 64.0, 100.0, 128.0, 200.0, 250.0, 256.0, 500.0]),
    scale=st.floats(0.01, 500.0),
    seed=st.integers(0, 2**16),
)
def test_any_rate_and_scale_gives_finite_inputs(sfreq, scale, seed):
    x = _eeg(sfreq, n_epochs=2, seed=seed) * scale
    f = F.continuous_features(x, sfreq)
    z = F.normalize_offline(f, F.NormPrior.neutral())
    assert z.shape == (2, F.N_INPUTS)
    assert np.isfinite(z).all()


def _day_and_night(n_day_before: int, n_night: int, n_day_after: int, seed: int = 0):
    """Raw features: active daytime wake around a quiet night (muscle, eyes and tone high by day;
    the night's own stages vary its spectrum), one EOG channel and no EMG."""
    rng = np.random.default_rng(seed)
    n = n_day_before + n_night + n_day_after
    day = np.r_[np.ones(n_day_before), np.zeros(n_night), np.ones(n_day_after)].astype(bool)
    vals = rng.normal(0.0, 0.3, (n, F.N_COLUMNS))
    night_stage = np.sin(np.arange(n) / 20.0)  # cycles of deeper and lighter sleep
    vals[:, F.COLUMN_NAMES.index("log_delta1")] += np.where(day, 2.5, 2.5 + night_stage)
    for c, up in (("log_hi", 1.5), ("log_eog_low", 1.8), ("log_beta", 0.9)):
        vals[:, F.COLUMN_NAMES.index(c)] += np.where(day, up, 0.0)
    for c in ("log_emg_lo", "log_emg_hi", "emg_phasic", "eog_corr"):
        vals[:, F.COLUMN_NAMES.index(c)] = np.nan
    return F.EpochFeatures(
        vals,
        np.ones(n, dtype=bool),
        np.zeros((n, F.N_SLOW_WAVES)),
        np.zeros((n, F.N_SLOW_WAVES)),
        np.full((n, 60), 100.0),
        np.array([1.0, 0.0, 0.0, 1.0, 1.0]),
    )


@pytest.mark.parametrize("before, after", [(1000, 500), (300, 900), (0, 700)])
def test_sleep_period_is_the_night_of_a_day_and_night_recording(before, after):
    f = _day_and_night(before, 900, after)
    p = F.sleep_period(f)
    margin = F.SLEEP_PERIOD_MARGIN
    # the night and its margin of wake, give or take the running median's few epochs
    assert abs(p.start - max(before - margin, 0)) <= 12
    assert abs(p.stop - min(before + 900 + margin, f.n_epochs)) <= 12


def test_sleep_period_of_a_night_alone_or_a_short_recording_is_everything():
    assert F.sleep_period(_day_and_night(0, 900, 0)) == slice(0, 900)
    assert F.sleep_period(_day_and_night(150, 60, 0)) == slice(0, 210)  # under 2 h


def test_offline_scaling_of_the_night_does_not_depend_on_the_hours_of_day():
    prior = F.NormPrior.neutral()
    short = F.normalize_offline(_day_and_night(120, 900, 120, seed=1), prior)[120:1020]
    f_long = _day_and_night(1200, 900, 700, seed=1)
    f_long.values[1200:2100] = _day_and_night(120, 900, 120, seed=1).values[120:1020]
    long = F.normalize_offline(f_long, prior)[1200:2100]
    z = [F.INPUT_NAMES.index(c) for c in ("z_log_hi", "z_log_delta1", "z_log_eog_low")]
    assert np.max(np.abs(np.median(short[:, z], 0) - np.median(long[:, z], 0))) < 0.15
    # whole-recording scaling would have put the night 3-5 SD below a day-dominated median
    assert np.median(long[:, z[0]]) > -1.5


def test_online_scaling_moves_to_the_night_after_hours_of_day():
    f = _day_and_night(1200, 900, 0, seed=2)
    prior = F.NormPrior.neutral()
    on = F.normalize_online(f, prior)
    zi = F.INPUT_NAMES.index("z_log_hi")
    # before the night: scaled with the day so far; late in the night: with the night so far
    assert abs(np.median(on[900:1200, zi])) < 1.0
    assert abs(np.median(on[1800:2100, zi])) < 1.0
    # still causal: a row never depends on later epochs
    part = F.normalize_online(f.take(slice(0, 1500)), prior)
    assert np.array_equal(on[:1500], part)
