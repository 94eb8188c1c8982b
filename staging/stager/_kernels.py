"""numba kernels of the stager (the hot loops only; the classes that hold state are elsewhere)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def insert_ranked(order, counts, values, row):  # pragma: no cover - numba
    """Insert row ``row`` of ``values`` into each column's sorted order of row indices.

    Parameters
    ----------
    order : ndarray of uint16 or uint32, shape (n_columns, capacity)
        ``order[c, :counts[c]]``: indices of the rows whose column ``c`` is finite, sorted by
        that value (equal values: the newest first). Updated in place.
    counts : ndarray of int64, shape (n_columns,)
        Rows in each column's order. Updated in place.
    values : ndarray of float64, shape (n_rows, n_columns)
        The rows so far (``row < n_rows``).
    row : int
        The row to insert; its non-finite values are left out.
    """
    for c in range(values.shape[1]):
        x = values[row, c]
        if not np.isfinite(x):
            continue
        m = counts[c]
        lo, hi = 0, m  # first position whose value is not below x
        while lo < hi:
            mid = (lo + hi) // 2
            if values[order[c, mid], c] < x:
                lo = mid + 1
            else:
                hi = mid
        for j in range(m, lo, -1):
            order[c, j] = order[c, j - 1]
        order[c, lo] = row
        counts[c] = m + 1


@njit(cache=True)
def ranked_quartiles(order, counts, values):  # pragma: no cover - numba
    """Nearest-rank quartiles of each column from its sorted order (see :func:`insert_ranked`).

    Returns
    -------
    ndarray, shape (3, n_columns)
        25th, 50th and 75th percentiles (+inf where no value; the
        zero of a tie between -0.0 and +0.0 is the newest one's).
    """
    n_cols = values.shape[1]
    q = np.full((3, n_cols), np.inf)
    for c in range(n_cols):
        m = counts[c]
        if m == 0:
            continue
        q[0, c] = values[order[c, np.int64(np.round(0.25 * (m - 1)))], c]
        q[1, c] = values[order[c, np.int64(np.round(0.5 * (m - 1)))], c]
        q[2, c] = values[order[c, np.int64(np.round(0.75 * (m - 1)))], c]
    return q
