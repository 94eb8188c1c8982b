"""Stationary coloured noise generated block by block, seamless across blocks.

Each block of ``n`` samples is drawn in the frequency domain with the wanted power spectral
density (a segment of ``n + overlap`` samples), windowed with a sine ramp-up over its first
``overlap`` samples and a cosine ramp-down over its last ``overlap`` samples, and overlap-added
with the tail of the previous block. Sine and cosine squared sum to one, so the variance and the
spectrum stay constant through the joins: there is no step and no dip at block borders.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from ._kernels import scatter_scaled
from ._normal import standard_normal_f32

if TYPE_CHECKING:
    from .context import BlockContext
    from .subject import Subject


def powerlaw_psd(freqs: np.ndarray, exponent: float, f_floor: float = 0.4) -> np.ndarray:
    """Return ``1 / f^exponent`` normalised to 1 at 1 Hz, flat below ``f_floor`` Hz.

    Parameters
    ----------
    freqs : ndarray, shape (n_freqs,)
        Frequencies, Hz.
    exponent : float
        Power-law exponent of the power spectrum.
    f_floor : float
        Frequency below which the spectrum is held flat, Hz.

    Returns
    -------
    ndarray, shape (n_freqs,)
        Relative power density.
    """
    f = np.maximum(freqs, f_floor)
    return f ** (-float(exponent))


def bump_psd(freqs: np.ndarray, center: float, width: float) -> np.ndarray:
    """Return a Gaussian spectral peak with unit integral (so the process has unit variance).

    Parameters
    ----------
    freqs : ndarray, shape (n_freqs,)
        Frequencies, Hz.
    center : float
        Peak frequency, Hz.
    width : float
        Standard deviation of the peak, Hz.

    Returns
    -------
    ndarray, shape (n_freqs,)
        Power density, 1/Hz.
    """
    g = np.exp(-0.5 * ((freqs - center) / width) ** 2)
    return g / (width * np.sqrt(2.0 * np.pi))


def slow_psd(freqs: np.ndarray, corner: float) -> np.ndarray:
    """Return a broad low-frequency shape with unit integral: ``u^2 / (1 + u^2)^2.5``.

    With ``u = f / corner`` it rises as ``f^2`` below the corner (an AC-coupled slow wave has
    little power at DC) and falls smoothly as ``f^-3`` above it, with no band edge.

    Parameters
    ----------
    freqs : ndarray, shape (n_freqs,)
        Frequencies, Hz.
    corner : float
        Corner frequency, Hz (the peak is at ``corner * sqrt(2/3)``).

    Returns
    -------
    ndarray, shape (n_freqs,)
        Power density, 1/Hz.
    """
    u2 = (np.asarray(freqs, dtype=np.float64) / corner) ** 2
    shape = u2 / (1.0 + u2) ** 2.5
    integral = np.trapezoid(shape, freqs)
    return shape / integral if integral > 0 else shape


def band_psd(freqs: np.ndarray, lo: float, hi: float, order: int = 4) -> np.ndarray:
    """Return a smooth band-pass power shape with unit integral (unit-variance process).

    Parameters
    ----------
    freqs : ndarray, shape (n_freqs,)
        Frequencies, Hz.
    lo, hi : float
        Band edges (half power), Hz.
    order : int
        Steepness of the Butterworth-like edges.

    Returns
    -------
    ndarray, shape (n_freqs,)
        Power density, 1/Hz.
    """
    f = np.maximum(freqs, 1e-9)
    shape = 1.0 / (1.0 + (lo / f) ** (2 * order)) / (1.0 + (f / hi) ** (2 * order))
    integral = np.trapezoid(shape, freqs)
    return shape / integral if integral > 0 else shape


class NoiseBank:
    """Independent Gaussian noise streams with fixed spectra, produced block by block.

    Parameters
    ----------
    psd : ndarray, shape (n_streams, n // 2 + overlap // 2 + 1)
        One-sided power spectral density of each stream on the grid of :meth:`freqs`,
        in (unit)^2/Hz.
    sfreq : float
        Sampling rate, Hz.
    n : int
        Block length, samples.
    overlap : int
        Cross-fade length between blocks, samples (``<= n``).
    """

    def __init__(self, psd: np.ndarray, sfreq: float, n: int, overlap: int):
        if overlap > n:
            raise ValueError(f"overlap ({overlap}) must not exceed the block length ({n}).")
        self.sfreq = float(sfreq)
        self.n = int(n)
        self.overlap = int(overlap)
        self.length = self.n + self.overlap
        psd = np.atleast_2d(np.asarray(psd, dtype=np.float64))
        if psd.shape[1] != self.length // 2 + 1:
            raise ValueError(
                f"psd must have {self.length // 2 + 1} frequency bins, got {psd.shape[1]}."
            )
        # With norm="ortho", unit-variance white noise has E|X_k|^2 = 1 per bin; a one-sided PSD
        # P(f) needs |H|^2 = P * sfreq / 2.
        amp = np.sqrt(psd * self.sfreq / 2.0)
        amp[:, 0] = 0.0
        # real and imaginary parts each carry half the power; single precision is plenty for
        # noise and halves the cost of drawing and transforming it
        self._amp = (amp / np.sqrt(2.0)).astype(np.float32)
        # only bins that carry power are drawn (above 1e-4 of the peak power density: narrow-band
        # streams need few)
        peak = self._amp.max(axis=1, keepdims=True)
        self._active = np.flatnonzero((self._amp > 1e-2 * peak).ravel())
        self._amp_active = self._amp.ravel()[self._active]
        self.n_streams = psd.shape[0]
        t = (np.arange(self.overlap) + 0.5) / max(self.overlap, 1)
        self._up = np.sin(0.5 * np.pi * t)
        self._down = np.cos(0.5 * np.pi * t)
        self._tail = np.zeros((0, self.overlap))
        self._first = True

    @staticmethod
    def freqs(sfreq: float, n: int, overlap: int) -> np.ndarray:
        """Frequency grid (Hz) on which a bank of these parameters takes its PSD."""
        return np.fft.rfftfreq(int(n) + int(overlap), 1.0 / float(sfreq))

    def spectra(self, rng: np.random.Generator) -> np.ndarray:
        """Draw the spectra of the next block (to mix linearly, then :meth:`render`).

        Parameters
        ----------
        rng : numpy.random.Generator
            Randomness of this block (seeded per block for reproducibility).

        Returns
        -------
        ndarray of complex64, shape (n_streams, n_freqs)
            One-sided spectra of the streams (``norm="ortho"`` scaling).
        """
        spec = np.zeros(self._amp.shape, dtype=np.complex64)
        draw = standard_normal_f32(rng, 2 * self._active.size)  # numpy's draws, faster
        scatter_scaled(draw, self._amp_active, self._active, spec.reshape(-1).view(np.float32))
        return spec

    def render(self, spec: np.ndarray) -> np.ndarray:
        """Turn spectra into the next block, cross-faded with the previous block's tail.

        Parameters
        ----------
        spec : ndarray of complex, shape (n_out, n_freqs)
            :meth:`spectra` or any linear mix of its rows (``n_out`` the same every block).

        Returns
        -------
        ndarray, shape (n_out, n)
            The streams.
        """
        seg = np.fft.irfft(spec, n=self.length, norm="ortho", axis=-1)
        ov = self.overlap
        out = seg[:, : self.n].astype(np.float64)
        if ov:
            if not self._first:
                out[:, :ov] *= self._up
                out[:, :ov] += self._tail
            self._tail = seg[:, self.n :] * self._down
        self._first = False
        return out

    def block(self, rng: np.random.Generator) -> np.ndarray:
        """Return the next block (:meth:`render` of :meth:`spectra`).

        Parameters
        ----------
        rng : numpy.random.Generator
            Randomness of this block (seeded per block for reproducibility).

        Returns
        -------
        ndarray, shape (n_streams, n)
            The streams.
        """
        return self.render(self.spectra(rng))


class BankGenerator(ABC):
    """Base of a signal generator whose background is drawn from one :class:`NoiseBank`.

    Stores the subject and sampling rate and builds ``self.bank`` from the PSD that
    :meth:`noise_psd` gives on the bank's frequency grid. Subclasses implement
    :meth:`noise_psd` and :meth:`generate`.

    Parameters
    ----------
    subject : Subject
        The person.
    sfreq : float
        Sampling rate, Hz.
    n : int
        Block length, samples.
    overlap : int
        Noise cross-fade length, samples.
    """

    def __init__(self, subject: Subject, sfreq: float, n: int, overlap: int):
        self.s = subject
        self.sfreq = sfreq
        psd = self.noise_psd(NoiseBank.freqs(sfreq, n, overlap))
        self.bank = NoiseBank(psd, sfreq, n, overlap)

    @abstractmethod
    def noise_psd(self, freqs: np.ndarray) -> np.ndarray:
        """Return the PSD of the bank's streams.

        Parameters
        ----------
        freqs : ndarray, shape (n_freqs,)
            The bank's frequency grid, Hz (see :meth:`NoiseBank.freqs`).

        Returns
        -------
        ndarray, shape (n_streams, n_freqs)
            One-sided PSD of each stream, (unit)^2/Hz.
        """

    @abstractmethod
    def generate(self, ctx: BlockContext, buf: np.ndarray) -> None:
        """Add this generator's signals of one block into its rows of ``buf``.

        Parameters
        ----------
        ctx : BlockContext
            The block.
        buf : ndarray, shape (n_channels, n + tail)
            Internal signal buffer, µV (modified in place).
        """
