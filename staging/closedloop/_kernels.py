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
            srt = np.sort(buf[:k])
            above = allr[n_bg + i] > ratio * srt[(k - 1) // 2]
        run = run + 1 if above else 0
        if run == need:
            hits[n_hits] = i
            n_hits += 1
    return run, hits[:n_hits]
