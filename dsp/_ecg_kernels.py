"""Numba kernel of the R-peak detector (numba loops only; the API is in :mod:`dsp.ecg`).

The detector is a Pan-Tompkins style state machine run one sample at a time:

1. band-pass (biquad cascade, direct form II transposed, state carried),
2. five-point derivative, squaring, moving-window integration (MWI, 150 ms),
3. local maxima of the MWI, confirmed once nothing larger followed for ``confirm`` samples,
4. adaptive signal/noise levels (SPKI, NPKI) and threshold ``NPKI + 0.25 (SPKI - NPKI)``,
   refractory period, T-wave rejection and search-back for missed beats,
5. refinement of each beat to the extremum of the raw signal in a window before the MWI peak.

Every piece of state lives in the arrays passed in, so the output is identical whatever the
chunking. Invalid samples (lead-off, gap, saturation, flat line, rail) reset the state; the
detector learns its thresholds again from the next ``learn`` valid samples.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# ---- float state (fst) indices -----------------------------------------------------------
F_SPKI = 0  # running signal-peak level of the MWI
F_NPKI = 1  # running noise-peak level of the MWI
F_CAND_VAL = 2  # value of the best unconfirmed local maximum
F_NOISE_VAL = 3  # largest noise peak since the last beat (search-back)
F_LAST_PK = 4  # MWI value of the last accepted beat
F_MWI_SUM = 5  # running sum of the MWI ring
F_LEARN_MAX = 6
F_LEARN_SUM = 7
F_EMA = 8  # slow mean of the raw signal (polarity learning)
F_DEV_MAX = 9
F_DEV_MIN = 10
F_PREV_X = 11
F_M1 = 12  # MWI one sample back
F_M2 = 13  # MWI two samples back
N_FSTATE = 14

# ---- int state (ist) indices -------------------------------------------------------------
I_LEARN_N = 0  # valid samples seen since the last reset (learning while < learn)
I_CAND_IDX = 1  # absolute index of the best unconfirmed local maximum (-1: none)
I_NOISE_IDX = 2  # absolute index of F_NOISE_VAL (-1: none)
I_LAST_QRS = 3  # absolute MWI-peak index of the last accepted beat (-1: none)
I_VALID = 4  # 1 while the input is valid
I_FLAT_RUN = 5  # consecutive samples without change
I_RR_N = 6  # number of RR intervals in the ring (<= len(rr))
I_RR_POS = 7  # next write position of the RR ring
I_POLARITY = 8  # +1 or -1 (0: learn it)
I_LAST_OUT = 9  # absolute index of the last emitted beat (-1: none)
I_N_RESETS = 10  # restarts written to ``resets`` in the current call
I_LEARN_BUF = 11  # MWI peaks buffered while learning
I_DECAY_AT = 12  # absolute index of the last halving of the levels (-1: none)
N_ISTATE = 13

# ---- int parameters (ipar) ---------------------------------------------------------------
P_WIN = 0  # MWI length, samples
P_REFRACT = 1  # refractory period, samples
P_CONFIRM = 2  # confirmation delay of a local maximum, samples
P_TWAVE = 3  # T-wave window after a beat, samples
P_LEARN = 4  # learning length after a reset, samples
P_FLAT = 5  # flat-line length that counts as lead-off, samples
P_BEFORE = 6  # refinement window before the MWI peak, samples
P_AFTER = 7  # refinement window after the MWI peak, samples
P_FIXED_POL = 8  # 0: learn polarity, +1/-1: fixed
P_DECAY = 9  # without a beat for this long (or 2 mean RR), halve the levels, samples
N_IPAR = 10

# ---- float parameters (fpar) -------------------------------------------------------------
Q_RAIL = 0  # |x| at or above this is railed, microvolts
Q_FLAT_EPS = 1  # |x[n] - x[n-1]| at or below this counts as flat, microvolts
Q_SEARCHBACK = 2  # search back when no beat for this many mean RR intervals
Q_EMA = 3  # coefficient of the slow mean (polarity learning)
Q_SFREQ = 4  # sampling rate, Hz
Q_MIN_RR = 5  # shortest RR that enters the mean, seconds
Q_MAX_RR = 6  # longest RR that enters the mean, seconds
Q_MIN_HEIGHT = 7  # smallest R-wave height above the local mean, microvolts
N_FPAR = 8


@njit(cache=True)
def _reset(fst, ist, zi, dbuf, mwi_ring, pol_fixed):
    """Forget everything learned (after invalid input); keep the flat-line tracker."""
    prev_x = fst[F_PREV_X]
    fst[:] = 0.0
    fst[F_PREV_X] = prev_x
    ist[I_LEARN_N] = 0
    ist[I_CAND_IDX] = -1
    ist[I_NOISE_IDX] = -1
    ist[I_LAST_QRS] = -1
    ist[I_VALID] = 0
    ist[I_RR_N] = 0
    ist[I_RR_POS] = 0
    ist[I_POLARITY] = pol_fixed
    ist[I_LEARN_BUF] = 0
    ist[I_DECAY_AT] = -1
    zi[:, :] = 0.0
    dbuf[:] = 0.0
    mwi_ring[:] = 0.0


@njit(cache=True)
def _refine(peak_idx, raw_ring, polarity, before, after, newest):
    """Return the raw extremum in ``[peak - before, peak + after]``: (index, height in µV)."""
    size = raw_ring.shape[0]
    lo = peak_idx - before
    hi = peak_idx + after
    if hi > newest:
        hi = newest
    if lo < newest - size + 1:
        lo = newest - size + 1
    if hi < lo:
        return peak_idx, 0.0
    mean = 0.0
    for k in range(lo, hi + 1):
        mean += raw_ring[k % size]
    mean /= hi - lo + 1
    best = lo
    best_val = -np.inf
    for k in range(lo, hi + 1):
        v = (raw_ring[k % size] - mean) * polarity
        if v > best_val:
            best_val = v
            best = k
    return best, best_val


@njit(cache=True)
def _emit(idx, fst, ist, rr, ipar, fpar, raw_ring, newest, out, n_out, pk, weight):
    """Accept a beat at MWI-peak index ``idx`` with MWI value ``pk``; return the new n_out."""
    fst[F_SPKI] = weight * pk + (1.0 - weight) * fst[F_SPKI]
    last = ist[I_LAST_QRS]
    if last >= 0:
        rr_s = (idx - last) / fpar[Q_SFREQ]
        if rr_s >= fpar[Q_MIN_RR] and rr_s <= fpar[Q_MAX_RR]:
            rr[ist[I_RR_POS]] = idx - last
            ist[I_RR_POS] = (ist[I_RR_POS] + 1) % rr.shape[0]
            if ist[I_RR_N] < rr.shape[0]:
                ist[I_RR_N] += 1
    ist[I_LAST_QRS] = idx
    fst[F_LAST_PK] = pk
    ist[I_NOISE_IDX] = -1
    fst[F_NOISE_VAL] = 0.0
    pol = ist[I_POLARITY]
    if pol == 0:
        pol = 1
    beat, height = _refine(idx, raw_ring, pol, ipar[P_BEFORE], ipar[P_AFTER], newest)
    if height < fpar[Q_MIN_HEIGHT]:
        return n_out  # too small to be a QRS complex (noise on a loose electrode)
    if beat > ist[I_LAST_OUT] + ipar[P_REFRACT] // 2 or ist[I_LAST_OUT] < 0:
        out[n_out] = beat
        ist[I_LAST_OUT] = beat
        return n_out + 1
    return n_out


@njit(cache=True)
def _classify(cidx, pk, fst, ist, rr, ipar, fpar, raw_ring, newest, out, n_out):
    """Classify a confirmed MWI peak as a beat or noise; return the new n_out."""
    thr1 = fst[F_NPKI] + 0.25 * (fst[F_SPKI] - fst[F_NPKI])
    last = ist[I_LAST_QRS]
    is_qrs = pk > thr1 and (last < 0 or cidx - last >= ipar[P_REFRACT])
    if is_qrs and last >= 0 and cidx - last < ipar[P_TWAVE]:
        if pk < 0.5 * fst[F_LAST_PK]:
            is_qrs = False  # T wave
    if is_qrs:
        return _emit(cidx, fst, ist, rr, ipar, fpar, raw_ring, newest, out, n_out, pk, 0.125)
    fst[F_NPKI] = 0.125 * pk + 0.875 * fst[F_NPKI]
    if (last < 0 or cidx - last >= ipar[P_REFRACT]) and pk > fst[F_NOISE_VAL]:
        fst[F_NOISE_VAL] = pk
        ist[I_NOISE_IDX] = cidx
    return n_out


# long: one loop over the samples on purpose; the same steps as njit helpers ran 5x slower
# (44 -> 206 ms per hour of ECG at 256 Hz, even with inline="always"), same beats bit for bit.
@njit(cache=True)
def ecg_detect(x, valid, start, sos, zi_unit, zi, dbuf, mwi_ring, raw_ring, rr, fst, ist,
               ipar, fpar, learn_idx, learn_val, out, resets, mwi_out):  # fmt: skip
    """Run the R-peak state machine over one chunk.

    Parameters
    ----------
    x : ndarray of float64, shape (n,)
        ECG samples, microvolts.
    valid : ndarray of bool, shape (n,)
        False where the sample is flagged (lead-off, gap, saturation, corrupt, not finite).
    start : int
        Absolute sample index of ``x[0]``.
    sos : ndarray of float64, shape (n_sections, 6)
        Band-pass filter.
    zi_unit : ndarray of float64, shape (n_sections, 2)
        Steady-state filter state for a unit step (``scipy.signal.sosfilt_zi``).
    zi, dbuf, mwi_ring, raw_ring, rr, fst, ist : ndarray
        State, modified in place (filter state, derivative history (4,), MWI ring (win,),
        raw ring (ring,), RR ring in samples (8,), float and int state).
    ipar, fpar : ndarray
        Integer and float parameters (see the ``P_*`` and ``Q_*`` indices).
    learn_idx, learn_val : ndarray of int64 / float64, shape (n_buf,)
        State: MWI peaks seen while learning, classified once the thresholds are set.
    out : ndarray of int64, shape (>= n // refractory + 4,)
        Receives the absolute indices of the detected R peaks.
    resets : ndarray of int64, shape (n,)
        Receives the absolute index of each sample where valid input became unusable; their
        number is left in ``ist[I_N_RESETS]``.
    mwi_out : ndarray of float64, shape (n,) or (0,)
        Receives the MWI signal when of length ``n`` (for tests); ignored when empty.

    Returns
    -------
    int
        Number of beats written to ``out``.
    """
    n = x.shape[0]
    n_sec = sos.shape[0]
    win = ipar[P_WIN]
    learn = ipar[P_LEARN]
    size = raw_ring.shape[0]
    keep_mwi = mwi_out.shape[0] == n
    n_out = 0
    ist[I_N_RESETS] = 0
    for i in range(n):
        idx = start + i
        xi = x[i]
        ok = valid[i] and abs(xi) < fpar[Q_RAIL]
        if ok:
            if abs(xi - fst[F_PREV_X]) <= fpar[Q_FLAT_EPS]:
                ist[I_FLAT_RUN] += 1
            else:
                ist[I_FLAT_RUN] = 0
            fst[F_PREV_X] = xi
            if ist[I_FLAT_RUN] >= ipar[P_FLAT]:
                ok = False  # a flat line: the electrode is off
        else:
            ist[I_FLAT_RUN] = 0
        if not ok:
            if ist[I_VALID] == 1:
                _reset(fst, ist, zi, dbuf, mwi_ring, ipar[P_FIXED_POL])
                resets[ist[I_N_RESETS]] = idx
                ist[I_N_RESETS] += 1
            if keep_mwi:
                mwi_out[i] = 0.0
            continue
        if ist[I_VALID] == 0:
            # (re)start: filter state at the steady state of this sample, slow mean at it
            ist[I_VALID] = 1
            for s in range(n_sec):
                zi[s, 0] = zi_unit[s, 0] * xi
                zi[s, 1] = zi_unit[s, 1] * xi
            fst[F_EMA] = xi
        raw_ring[idx % size] = xi
        # band-pass, direct form II transposed per section
        y = xi
        for s in range(n_sec):
            b0 = sos[s, 0]
            b1 = sos[s, 1]
            b2 = sos[s, 2]
            a1 = sos[s, 4]
            a2 = sos[s, 5]
            out_s = b0 * y + zi[s, 0]
            zi[s, 0] = b1 * y - a1 * out_s + zi[s, 1]
            zi[s, 1] = b2 * y - a2 * out_s
            y = out_s
        # five-point derivative (2y[n] + y[n-1] - y[n-3] - 2y[n-4]) / 8, squared
        d = (2.0 * y + dbuf[0] - dbuf[2] - 2.0 * dbuf[3]) * 0.125
        dbuf[3] = dbuf[2]
        dbuf[2] = dbuf[1]
        dbuf[1] = dbuf[0]
        dbuf[0] = y
        sq = d * d
        # moving-window integration (exact sum recomputed once per window against drift)
        n_here = ist[I_LEARN_N]
        pos = n_here % win
        fst[F_MWI_SUM] += sq - mwi_ring[pos]
        mwi_ring[pos] = sq
        if pos == win - 1:
            tot = 0.0
            for k in range(win):
                tot += mwi_ring[k]
            fst[F_MWI_SUM] = tot
        m = fst[F_MWI_SUM] / win
        if keep_mwi:
            mwi_out[i] = m
        ist[I_LEARN_N] = n_here + 1
        # slow mean of the raw signal: polarity of the R wave
        fst[F_EMA] += fpar[Q_EMA] * (xi - fst[F_EMA])
        learning = n_here < learn
        if learning:
            dev = xi - fst[F_EMA]
            if dev > fst[F_DEV_MAX]:
                fst[F_DEV_MAX] = dev
            if dev < fst[F_DEV_MIN]:
                fst[F_DEV_MIN] = dev
            if n_here >= win:
                if m > fst[F_LEARN_MAX]:
                    fst[F_LEARN_MAX] = m
                fst[F_LEARN_SUM] += m
        # local maximum of the MWI one sample back (once the MWI window is full)
        if n_here > win and fst[F_M1] > fst[F_M2] and fst[F_M1] >= m:
            if fst[F_M1] > fst[F_CAND_VAL] or ist[I_CAND_IDX] < 0:
                fst[F_CAND_VAL] = fst[F_M1]
                ist[I_CAND_IDX] = idx - 1
        fst[F_M2] = fst[F_M1]
        fst[F_M1] = m
        # confirm the candidate once nothing larger came for `confirm` samples
        cidx = ist[I_CAND_IDX]
        if cidx >= 0 and idx - cidx >= ipar[P_CONFIRM]:
            pk = fst[F_CAND_VAL]
            ist[I_CAND_IDX] = -1
            fst[F_CAND_VAL] = 0.0
            if learning:
                nb = ist[I_LEARN_BUF]
                if nb < learn_idx.shape[0]:
                    learn_idx[nb] = cidx
                    learn_val[nb] = pk
                    ist[I_LEARN_BUF] = nb + 1
            else:
                n_out = _classify(cidx, pk, fst, ist, rr, ipar, fpar, raw_ring, idx, out, n_out)
        if learning:
            if n_here == learn - 1:
                # thresholds from the learning period, then classify its peaks after the fact
                cnt = learn - win
                if cnt < 1:
                    cnt = 1
                fst[F_SPKI] = 0.25 * fst[F_LEARN_MAX]
                fst[F_NPKI] = 0.5 * fst[F_LEARN_SUM] / cnt
                if ist[I_POLARITY] == 0:
                    ist[I_POLARITY] = 1 if fst[F_DEV_MAX] >= -fst[F_DEV_MIN] else -1
                for b in range(ist[I_LEARN_BUF]):
                    n_out = _classify(learn_idx[b], learn_val[b], fst, ist, rr, ipar, fpar,
                                      raw_ring, idx, out, n_out)  # fmt: skip
                ist[I_LEARN_BUF] = 0
            continue
        # search back for a missed beat
        last = ist[I_LAST_QRS]
        nrr = ist[I_RR_N]
        rr_mean = 0.0
        if nrr > 0:
            tot = 0
            for k in range(nrr):
                tot += rr[k]
            rr_mean = tot / nrr
        if last >= 0 and nrr > 0 and ist[I_NOISE_IDX] >= 0:
            if idx - last > fpar[Q_SEARCHBACK] * rr_mean:
                thr2 = 0.5 * (fst[F_NPKI] + 0.25 * (fst[F_SPKI] - fst[F_NPKI]))
                if fst[F_NOISE_VAL] > thr2:
                    nidx = ist[I_NOISE_IDX]
                    pk = fst[F_NOISE_VAL]
                    n_out = _emit(nidx, fst, ist, rr, ipar, fpar, raw_ring, idx, out, n_out,
                                  pk, 0.25)  # fmt: skip
        # no beat for long: the amplitude dropped, halve both levels
        since = ist[I_LAST_QRS]
        if ist[I_DECAY_AT] > since:
            since = ist[I_DECAY_AT]
        if since < 0:
            since = idx - (n_here - learn)
        wait = 2.0 * rr_mean
        if wait < ipar[P_DECAY]:
            wait = ipar[P_DECAY]
        if idx - since > wait:
            fst[F_SPKI] *= 0.5
            fst[F_NPKI] *= 0.5
            ist[I_DECAY_AT] = idx
    return n_out
