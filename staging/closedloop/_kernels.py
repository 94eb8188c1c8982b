"""Numba loops of the closed-loop detectors (the API is in :mod:`staging.closedloop.arousal`).

Each kernel is the loop of a numpy original that has to run bin after bin; the tests compare
them with that original on random inputs, NaN included (tolerance zero: the same selections
and the same products).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def emg_bursts(allr, n_bg, gap, min_ok, ratio, need, run):  # pragma: no cover - numba
    """Chin-EMG bins above ``ratio`` times their background, in runs of ``need`` bins.

    Parameters
    ----------
    allr : ndarray of float64, shape (n_bg + n,)
        RMS of the ``n_bg`` bins before the new ones (NaN: flagged or not seen), then of the
        ``n`` new bins, µV.
    n_bg, gap : int
        The background of new bin ``i`` (``allr[n_bg + i]``) is ``allr[i : i + n_bg - gap]``:
        the ``n_bg`` bins before it but the last ``gap`` (``0 <= gap < n_bg``).
    min_ok : int
        Finite background bins needed; with fewer, the bin is not above.
    ratio : float
        A bin is above when its RMS exceeds ``ratio`` times the lower median of the finite
        background bins.
    need : int
        Bins in a run that make a burst (at least 1).
    run : int
        Bins above in a row before the new ones.

    Returns
    -------
    run : int
        Bins above in a row after the new ones.
    hits : ndarray of int64, shape (n_bursts,)
        Index (among the new bins) of the bin completing each burst's ``need`` bins.
    """
    n = allr.size - n_bg
    w = n_bg - gap
    buf = np.empty(w)
    hits = np.empty(n, np.int64)
    n_hits = 0
    for i in range(n):
        k = 0
        for j in range(i, i + w):
            if np.isfinite(allr[j]):
                buf[k] = allr[j]
                k += 1
        above = False
        if k >= min_ok and k > 0:
            # the lower median: an order statistic, from a partition (RMS >= +0.0: equal
            # values are equal bits)
            m = (k - 1) // 2
            above = allr[n_bg + i] > ratio * np.partition(buf[:k], m)[m]
        run = run + 1 if above else 0
        if run == need:
            hits[n_hits] = i
            n_hits += 1
    return run, hits[:n_hits]


#: Indices of the state array of :func:`eeg_shifts`.
S_POS, S_N_OK, S_IN_RUN, S_GAP = 0, 1, 2, 3
#: Band codes of :func:`eeg_shifts`'s scores.
ALPHA, BETA, THETA = 0, 1, 2


@njit(cache=True)
def eeg_shifts(logp, bad, ring, ring_ok, state, min_ok, shift, theta_shift, spindle):
    """Shifted EEG frames against the background of the frames before them (arousal rule).

    Frame after frame: the background is the lower median (per band) of the usable frames of
    the ring; a frame is shifted when alpha or beta rose by more than ``shift`` (or theta by
    more than ``theta_shift``) and sigma did not rise more than both by ``spindle``. A run of
    shifted frames ends at the second frame in a row that is not shifted, or at a flagged one.
    Frames that are flagged, shifted or inside a run do not enter the background.

    Parameters
    ----------
    logp : ndarray of float64, shape (n, 4)
        Log band powers (theta, alpha, sigma, beta) of the new frames.
    bad : ndarray of bool, shape (n,)
        Flagged frames.
    ring : ndarray of float64, shape (n_bg, 4)
        Log band powers of the last ``n_bg`` frames (updated in place).
    ring_ok : ndarray of bool, shape (n_bg,)
        Which of them are background (updated in place).
    state : ndarray of int64, shape (4,)
        ``S_POS`` (next ring slot), ``S_N_OK`` (background frames in the ring), ``S_IN_RUN``
        (1 inside a run), ``S_GAP`` (frames not shifted since the run's last shifted one);
        updated in place.
    min_ok : int
        Background frames needed to judge a frame.
    shift, theta_shift, spindle : float
        Thresholds, natural-log units of power.

    Returns
    -------
    shifted : ndarray of bool, shape (n,)
        The frame is shifted (it starts or extends a run).
    score : ndarray of float64, shape (n,)
        Rise of the band that rose most (of alpha/beta, or theta when it rose more).
    band : ndarray of int8, shape (n,)
        ``ALPHA``, ``BETA`` or ``THETA``: that band.
    n_ok : ndarray of int64, shape (n,)
        Background frames the frame was judged against.
    closes : ndarray of bool, shape (n,)
        The frame ends the run in progress.
    """
    n = logp.shape[0]
    n_bg = ring.shape[0]
    shifted = np.zeros(n, np.bool_)
    score = np.zeros(n)
    band = np.zeros(n, np.int8)
    n_oks = np.zeros(n, np.int64)
    closes = np.zeros(n, np.bool_)
    buf = np.empty(n_bg)
    bg = np.empty(4)
    pos, n_ok, in_run, gap = state[S_POS], state[S_N_OK], state[S_IN_RUN] != 0, state[S_GAP]
    for i in range(n):
        n_oks[i] = n_ok
        if not bad[i] and n_ok >= min_ok and n_ok > 0:
            k = (n_ok - 1) // 2
            for c in range(4):
                m = 0
                for r in range(n_bg):
                    if ring_ok[r]:
                        buf[m] = ring[r, c]
                        m += 1
                bg[c] = np.partition(buf[:m], k)[k]  # logs are never -0.0: equal bits
            th = logp[i, 0] - bg[0]
            al = logp[i, 1] - bg[1]
            si = logp[i, 2] - bg[2]
            be = logp[i, 3] - bg[3]
            cand, cband = (be, BETA) if be >= al else (al, ALPHA)
            if not si > max(al, be) + spindle and (cand > shift or th > theta_shift):
                shifted[i] = True
                if cand >= th:
                    score[i], band[i] = cand, cband
                else:
                    score[i], band[i] = th, THETA
        if shifted[i]:
            gap = 0
            in_run = True
        elif in_run:
            gap += 1
            if gap > 1 or bad[i]:
                closes[i] = True
                in_run, gap = False, 0
        ring[pos] = logp[i]
        ok = not bad[i] and not shifted[i] and not in_run
        n_ok += int(ok) - int(ring_ok[pos])
        ring_ok[pos] = ok
        pos = (pos + 1) % n_bg
    state[S_POS], state[S_N_OK], state[S_IN_RUN], state[S_GAP] = pos, n_ok, int(in_run), gap
    return shifted, score, band, n_oks, closes


#: Indices of the integer state of :func:`running_median` and :func:`eye_movements`.
M_POS, M_COUNT, M_N_FIN, M_N_NAN, M_PART = 0, 1, 2, 3, 4
#: Indices of the float state of :func:`eye_movements`.
E_PREV, E_MED, E_LAST = 0, 1, 2


@njit(cache=True)
def running_median(ring, srt, ist, value):  # pragma: no cover - numba
    """Push ``value`` into the last ``ring.size`` values; return their median.

    The median is numpy's of those values, bit for bit: the middle one, or the mean of the two
    middle ones (``(a + b) / 2``); NaN while a NaN is among them. The finite values are kept
    sorted (an insertion and a deletion per push, no sort).

    Parameters
    ----------
    ring : ndarray of float64, shape (n,)
        The last values in the order they came (updated in place).
    srt : ndarray of float64, shape (n,)
        The finite ones among them, sorted, in ``srt[:ist[M_N_FIN]]`` (updated in place).
    ist : ndarray of int64, shape (>= 4,)
        ``M_POS`` (slot of the oldest value), ``M_COUNT`` (values kept), ``M_N_FIN``,
        ``M_N_NAN`` (finite and NaN values kept); updated in place.
    value : float
        The new value.

    Returns
    -------
    float
    """
    n = ring.shape[0]
    pos = ist[M_POS]
    n_fin = ist[M_N_FIN]
    if ist[M_COUNT] == n:
        old = ring[pos]
        if old != old:
            ist[M_N_NAN] -= 1
        else:  # delete the first equal value (bisect_left)
            lo, hi = 0, n_fin
            while lo < hi:
                mid = (lo + hi) // 2
                if srt[mid] < old:
                    lo = mid + 1
                else:
                    hi = mid
            for k in range(lo, n_fin - 1):
                srt[k] = srt[k + 1]
            n_fin -= 1
    else:
        ist[M_COUNT] += 1
    ring[pos] = value
    ist[M_POS] = (pos + 1) % n
    if value != value:
        ist[M_N_NAN] += 1
    else:  # insert after the equal values (insort_right)
        lo, hi = 0, n_fin
        while lo < hi:
            mid = (lo + hi) // 2
            if value < srt[mid]:
                hi = mid
            else:
                lo = mid + 1
        for k in range(n_fin, lo, -1):
            srt[k] = srt[k - 1]
        srt[lo] = value
        n_fin += 1
    ist[M_N_FIN] = n_fin
    if ist[M_N_NAN] > 0:
        return np.nan
    k = n_fin // 2
    return srt[k] if n_fin % 2 else (srt[k - 1] + srt[k]) / 2


@njit(cache=True)
def eye_movements(y, bad, first, sfreq, min_slope, factor, refr, part, ring, srt, ist, fst):
    """Rapid eye movements in the band-passed EOG derivation (the nightmare detector's rule).

    The absolute slope (µV/s, 0 at unusable samples) is cut into whole seconds of
    ``part.size`` samples from the first sample ever pushed. Second after second, its
    threshold is ``max(min_slope, factor * m)``, ``m`` the running median of the median slopes
    of the seconds before it (:func:`running_median`); a sample above it is a movement when it
    comes at least ``refr`` samples after the last one.

    Parameters
    ----------
    y : ndarray of float64, shape (n,)
        The band-passed derivation, µV (consecutive with the last call).
    bad : ndarray of bool, shape (n,)
        Unusable samples.
    first : int
        Absolute index of ``y[0]``.
    sfreq : float
        Sampling rate, Hz.
    min_slope, factor, refr : float
        Lowest threshold (µV/s), factor on the running median, refractory period (samples).
    part : ndarray of float64, shape (sec,)
        The slopes of the second in progress (``ist[M_PART]`` of them; updated in place).
    ring, srt : ndarray of float64, shape (n_noise,)
        State of the running median of the per-second medians (:func:`running_median`).
    ist : ndarray of int64, shape (5,)
        The running median's state and ``M_PART``; updated in place.
    fst : ndarray of float64, shape (3,)
        ``E_PREV`` (last filtered sample), ``E_MED`` (the running median, inf before the first
        second), ``E_LAST`` (sample of the last movement, -inf before it); updated in place.

    Returns
    -------
    ndarray of int64, shape (n_movements,)
        Absolute sample index of each movement, increasing.
    """
    n = y.shape[0]
    sec = part.shape[0]
    out = np.empty(n + sec, np.int64)  # the seconds completed here hold the movements
    n_out = 0
    n_part = ist[M_PART]
    prev, med, last = fst[E_PREV], fst[E_MED], fst[E_LAST]
    for i in range(n):
        s = abs(y[i] - prev) * sfreq
        prev = y[i]
        part[n_part] = 0.0 if bad[i] else s
        n_part += 1
        if n_part < sec:
            continue
        n_part = 0
        thr = factor * med
        if not thr > min_slope:  # Python's max(min_slope, thr): NaN gives min_slope
            thr = min_slope
        start = first + i + 1 - sec
        for k in range(sec):
            if part[k] > thr and start + k - last >= refr:
                out[n_out] = start + k
                n_out += 1
                last = start + k
        # the median of the second, as numpy's: (0 + a + b) / 2, NaN if a value is NaN; a and
        # b the middle order statistics (a partition, not a sort: slopes are >= +0.0, so
        # equal values are equal bits)
        k = sec // 2
        if np.isnan(part).any():
            m = np.nan
        else:
            row = np.partition(part, k)
            m = 0.0 + row[k] if sec % 2 else (0.0 + row[:k].max() + row[k]) / 2
        med = running_median(ring, srt, ist, m)
    ist[M_PART] = n_part
    fst[E_PREV], fst[E_MED], fst[E_LAST] = prev, med, last
    return out[:n_out]


#: Indices of the integer state of :func:`movements`.
A_PART, A_RUN, A_N_HIST = 0, 1, 2


@njit(cache=True)
def movements(x, first, mg, factor, part, hist, ist):
    """Body movements on the accelerometer (the arousal detector's wake sign).

    The axes are cut into whole seconds of ``part.shape[1]`` samples from the first sample
    ever pushed. The peak-to-peak of a second is the largest over the axes of ``max - min``
    (NaN if a sample is NaN, as numpy's). A second is *moving* when it exceeds ``mg`` and
    ``factor`` times the median of the still seconds kept in ``hist`` (numpy's median, taken
    once per call, before its seconds; infinite while fewer than 10 are kept); a movement
    sign is the first second of a moving run. The still seconds (NaN ones included) then
    enter ``hist``, which keeps the last ``hist.size``.

    Parameters
    ----------
    x : ndarray of float64, shape (n_axes, n)
        New samples, milli-g (consecutive with the last call).
    first : int
        Absolute index of ``x[:, 0]``.
    mg, factor : float
        Thresholds: milli-g, and times the median.
    part : ndarray of float64, shape (n_axes, sec)
        The second in progress (``ist[A_PART]`` samples; updated in place).
    hist : ndarray of float64, shape (n_keep,)
        The still seconds' peak-to-peaks, oldest first (``ist[A_N_HIST]`` of them; updated in
        place).
    ist : ndarray of int64, shape (3,)
        ``A_PART``, ``A_RUN`` (1 while the last second was moving), ``A_N_HIST``; updated in
        place.

    Returns
    -------
    ndarray of int64, shape (n_signs,)
        Absolute index of the first sample of each second that starts a moving run.
    """
    n_ax, n = x.shape
    sec = part.shape[1]
    keep = hist.shape[0]
    n_hist = ist[A_N_HIST]
    med = np.inf
    if n_hist >= 10:
        srt = np.sort(hist[:n_hist])
        k = n_hist // 2
        if np.isnan(hist[:n_hist]).any():
            med = np.nan
        elif n_hist % 2:
            med = srt[k]
        else:
            med = (srt[k - 1] + srt[k]) / 2
    out = np.empty(n // sec + 1, np.int64)
    n_out = 0
    n_part = ist[A_PART]
    run = ist[A_RUN] != 0
    for i in range(n):
        for a in range(n_ax):
            part[a, n_part] = x[a, i]
        n_part += 1
        if n_part < sec:
            continue
        n_part = 0
        ptp = -np.inf
        for a in range(n_ax):
            hi = lo = part[a, 0]
            for k in range(1, sec):  # numpy's max and min: a NaN wins
                v = part[a, k]
                if hi == hi and (v != v or v > hi):
                    hi = v
                if lo == lo and (v != v or v < lo):
                    lo = v
            d = hi - lo
            if ptp == ptp and (d != d or d > ptp):
                ptp = d
        moving = ptp > mg and ptp > factor * med
        if moving and not run:
            out[n_out] = first + i + 1 - sec
            n_out += 1
        run = moving
        if not moving:  # a still second: into the history (the oldest out when full)
            if n_hist == keep:
                for k in range(keep - 1):
                    hist[k] = hist[k + 1]
                n_hist -= 1
            hist[n_hist] = ptp
            n_hist += 1
    ist[A_PART], ist[A_RUN], ist[A_N_HIST] = n_part, int(run), n_hist
    return out[:n_out]
