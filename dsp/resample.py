"""Polyphase resampling by a rational factor, offline and streaming.

Both compute exactly the definition of :func:`scipy.signal.resample_poly` with its default
zero padding: output sample ``k`` (at time ``k / (sfreq * up / down)``) is the input up-sampled
by ``up`` with zeros, convolved with a centred Kaiser-windowed low-pass FIR of ``2 * 10 *
max(up, down) + 1`` taps (multiplied by ``up``), taken every ``down`` samples. The streaming
:class:`Resampler` emits each output sample as soon as the inputs it needs have arrived (a
latency of ``half_len / up`` input samples, :attr:`Resampler.delay`), and :meth:`~Resampler.flush`
emits the rest as if the signal were followed by zeros: the concatenation of all its outputs
equals ``scipy.signal.resample_poly`` of the whole signal (to rounding: scipy's summation
order differs; products are accumulated here in float64).
"""

from __future__ import annotations

import math

import numpy as np

from . import _kernels
from .docs import fill_doc
from .iir import _axis
from .validate import as_signal, check_int

__all__ = ["Resampler", "resample_poly"]


def _factors(up, down) -> tuple[int, int]:
    up, down = check_int("up", up), check_int("down", down)
    g = math.gcd(up, down)
    return up // g, down // g


def _design(up: int, down: int, window, dtype) -> tuple[np.ndarray, int]:
    """Return scipy's filter ``h`` (times ``up``) and its half length."""
    from scipy.signal import firwin  # lazy: keeps `import dsp` light

    if isinstance(window, list | np.ndarray):
        h = np.array(window, dtype=np.float64)
        if h.ndim != 1 or h.size == 0:
            raise ValueError("window given as FIR taps must be a non-empty 1-D array.")
        half_len = (h.size - 1) // 2
    else:
        max_rate = max(up, down)
        half_len = 10 * max_rate
        h = firwin(2 * half_len + 1, 1.0 / max_rate, window=window)
    if dtype == np.float32:  # scipy designs h in the dtype of a float x
        h = h.astype(np.float32)
    h = h * h.dtype.type(up)
    return np.ascontiguousarray(h, dtype=np.float64), half_len


def _n_out(n_in: int, up: int, down: int) -> int:
    return (n_in * up) // down + bool((n_in * up) % down)


@fill_doc
def resample_poly(x, up, down, axis=-1, window=("kaiser", 5.0)):
    """Resample ``x`` by ``up / down`` with a polyphase FIR filter (zero-padded edges).

    Same result as :func:`scipy.signal.resample_poly` with its default ``padtype="constant"``.

    Parameters
    ----------
    x : array_like
        Signal (e.g. ``(n_channels, n_samples)`` in µV), real.
    up, down : int
        Up-sampling and down-sampling factors (e.g. 25, 64 for 256 -> 100 Hz).
    %(axis)s
    window : str, tuple or array_like
        FIR window for ``scipy.signal.firwin`` (default Kaiser with beta 5), or the FIR taps
        themselves.

    Returns
    -------
    ndarray
        Resampled signal; ``x.shape[axis]`` becomes ``ceil(n * up / down)``. float32 for
        float32 input, else float64.

    Notes
    -----
    The default ``axis`` is -1 (time last, as everywhere in dreamnet), where scipy's is 0.
    Non-finite samples propagate to the outputs whose filter span covers them, as in scipy.
    """
    x = as_signal(x)
    ax = _axis(axis, x.ndim)
    up, down = _factors(up, down)
    out_dtype = np.float32 if x.dtype == np.float32 else np.float64
    if up == down == 1:
        return np.array(x, dtype=out_dtype)
    h, half_len = _design(up, down, window, out_dtype)
    n = x.shape[ax]
    xm = np.moveaxis(x, ax, -1)
    lead = xm.shape[:-1]
    m = int(np.prod(lead, dtype=np.int64))
    x2 = np.ascontiguousarray(xm.reshape(m, n), dtype=np.float64)
    n_out = _n_out(n, up, down)
    out = np.empty((m, n_out))
    _kernels.polyphase(h, up, down, half_len, x2, 0, n, 0, out)
    y = out.reshape(lead + (n_out,)).astype(out_dtype, copy=False)
    return np.moveaxis(y, -1, ax)


@fill_doc
class Resampler:
    """Streaming polyphase resampler with state: ``y = rs(chunk)``.

    Parameters
    ----------
    up, down : int
        Rate factors (reduced by their gcd), e.g. ``Resampler(25, 64, 8)`` for 256 -> 100 Hz
        or ``Resampler(16, 25, 8)`` for 200 -> 128 Hz.
    %(n_channels)s
    window : str, tuple or array_like
        As in :func:`resample_poly`.

    Notes
    -----
    Output sample ``k`` needs input up to index ``(k * down + half_len) // up``, so each call
    returns the outputs that became computable (possibly none) and the stream lags the input
    by :attr:`delay` input samples; sample ``k`` of the concatenated output belongs at time
    ``k * down / (up * sfreq_in)`` s, exactly as in scipy. :meth:`flush` ends the stream.
    Non-finite input is rejected (``ValueError``): a NaN would spread over a filter length of
    output; clean or hold the samples first.
    """

    def __init__(self, up, down, n_channels, *, window=("kaiser", 5.0)):
        self.up, self.down = _factors(up, down)
        self.n_channels = check_int("n_channels", n_channels)
        self._h, self.half_len = _design(self.up, self.down, window, np.float64)
        # inputs needed by one output span (2 * half_len) / up + 1 samples
        self._keep = (2 * self.half_len) // self.up + 2
        self.reset()

    @property
    def delay(self) -> float:
        """Latency of the stream in input samples (``half_len / up``)."""
        return self.half_len / self.up

    @property
    def n_in(self) -> int:
        """Input samples received since the last reset."""
        return self._n_in

    @property
    def n_out(self) -> int:
        """Output samples emitted since the last reset."""
        return self._n_out

    def reset(self) -> None:
        """Start a new stream (zero history)."""
        self._hist = np.zeros((self.n_channels, 0))
        self._base = 0
        self._n_in = 0
        self._n_out = 0
        self._done = False

    def _emit(self, k_end: int, n_valid: int) -> np.ndarray:
        k0 = self._n_out
        out = np.empty((self.n_channels, max(0, k_end - k0)))
        if out.shape[1]:
            _kernels.polyphase(
                self._h,
                self.up,
                self.down,
                self.half_len,
                self._hist,
                self._base,
                n_valid,
                k0,
                out,
            )
            self._n_out = k_end
        return out

    def __call__(self, x) -> np.ndarray:
        """Push a chunk and return the output samples that became computable.

        Parameters
        ----------
        x : array_like, shape (n_channels, n_samples)
            Input chunk (µV), finite.

        Returns
        -------
        ndarray of float64, shape (n_channels, n_new)
            New output samples (``n_new`` may be 0).
        """
        if self._done:
            raise ValueError("this Resampler was flushed; call reset() to start a new stream.")
        x = as_signal(x)
        if x.ndim != 2 or x.shape[0] != self.n_channels:
            raise ValueError(
                f"chunk must have shape ({self.n_channels}, n_samples), got {x.shape}."
            )
        if not np.isfinite(x).all():
            raise ValueError(
                "chunk contains NaN or infinite values; the resampler needs "
                "finite input (hold or interpolate bad samples first)."
            )
        hist = np.concatenate([self._hist, x.astype(np.float64, copy=False)], axis=1)
        self._hist = hist
        self._n_in += x.shape[1]
        num = self.up * self._n_in - 1 - self.half_len
        k_end = num // self.down + 1 if num >= 0 else 0
        out = self._emit(k_end, self._n_in)
        drop = max(0, self._hist.shape[1] - self._keep)
        if drop:
            self._hist = self._hist[:, drop:].copy()
            self._base += drop
        return out

    def flush(self) -> np.ndarray:
        """Return the remaining output as if the input were followed by zeros; end the stream.

        Returns
        -------
        ndarray of float64, shape (n_channels, n_rest)
            The last output samples, up to ``ceil(n_in * up / down)`` in total.
        """
        if self._done:
            return np.empty((self.n_channels, 0))
        out = self._emit(_n_out(self._n_in, self.up, self.down), self._n_in)
        self._done = True
        return out

    def __repr__(self) -> str:
        return (
            f"<Resampler | x{self.up}/{self.down}, {self.n_channels} channels, "
            f"delay {self.delay:g} input samples>"
        )
