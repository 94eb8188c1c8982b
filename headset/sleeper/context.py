"""What every signal generator needs to know about the block being generated."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._kernels import column_means, cumulative_rate


@dataclass
class BlockContext:
    """State of the sleeper over one generation block.

    Parameters
    ----------
    index : int
        Block index since the session start.
    start : int
        Sample index of the first sample of the block.
    n : int
        Samples in the block.
    tail : int
        Samples after the block that events may spill into (overlap-add).
    sfreq : float
        Sampling rate, Hz.
    stage : int
        True stage of the epoch holding the block.
    w : ndarray, shape (n, 5)
        Stage mix per sample (rows sum to 1; a smooth ramp after each stage change).
    mix_stages : tuple of int
        Stages whose column of ``w`` may be non-zero; every other column is zero, so an event
        whose rate is a multiple of those columns cannot happen in the block.
    arousal : ndarray, shape (n,)
        Cortical arousal intensity, 0-1.
    nightmare : ndarray, shape (n,)
        Nightmare (sympathetic activation) intensity, 0-1.
    eyes_open : ndarray, shape (n,)
        1 where the eyes are open (wake only), smoothed.
    movement : ndarray, shape (n,)
        Body-movement intensity, 0-1.
    confusion : ndarray, shape (n,)
        Confusion-arousal intensity (arousal out of N3: slow waves persist), 0-1.
    daytime : ndarray, shape (n,)
        1 while the subject is up and about (daytime wake before going to bed or after getting
        up: eyes open, looking around, more muscle), smoothed; 0 in bed.
    talk : ndarray, shape (n,)
        Talking or chewing intensity (bursts of scalp and chin muscle, daytime only), 0 or more
        (multiples of the subject's wake muscle tone).
    homeostasis : float
        Slow-wave pressure factor (1 at sleep onset, decaying over the night).
    rng : numpy.random.Generator
        Randomness of the block.
    """

    index: int
    start: int
    n: int
    tail: int
    sfreq: float
    stage: int
    w: np.ndarray
    mix_stages: tuple[int, ...]
    arousal: np.ndarray
    nightmare: np.ndarray
    eyes_open: np.ndarray
    movement: np.ndarray
    confusion: np.ndarray
    daytime: np.ndarray
    talk: np.ndarray
    homeostasis: float
    rng: np.random.Generator

    def in_mix(self, *stages: int) -> bool:
        """Return True when any of ``stages`` is in the block's stage mix (``mix_stages``)."""
        return any(s in self.mix_stages for s in stages)

    def stage_rate(self, per_stage: np.ndarray) -> np.ndarray:
        """Per-sample values mixed from one row of values per stage: ``w @ per_stage``.

        In a block of one stage (``mix_stages`` holds one stage: the rows of ``w`` are one-hot)
        the product is that stage's row exactly, whatever the order of the sums, so it is
        copied instead of computed.

        Parameters
        ----------
        per_stage : ndarray of float64, shape (5,) or (5, k)
            Values in W, N1, N2, N3, R.

        Returns
        -------
        ndarray, shape (n,) or (n, k)
            ``w @ per_stage`` (a new array).
        """
        if len(self.mix_stages) == 1:
            row = per_stage[self.mix_stages[0]]
            return np.broadcast_to(row, (self.n, *np.shape(row))).copy()
        return self.w @ per_stage

    def stage_mean(self, per_stage: np.ndarray) -> np.ndarray:
        """Block means of the mix: ``column_means(w) @ per_stage``, shape (k,) (a new array).

        In a block of one stage the means are one-hot and the product is that stage's row.

        Parameters
        ----------
        per_stage : ndarray of float64, shape (5, k)
            Values in W, N1, N2, N3, R.
        """
        if len(self.mix_stages) == 1:
            return per_stage[self.mix_stages[0]].copy()
        return column_means(self.w) @ per_stage

    def event_onsets(self, rate_per_min: np.ndarray) -> np.ndarray:
        """Draw event onsets (an inhomogeneous Poisson process) inside the block.

        Parameters
        ----------
        rate_per_min : ndarray, shape (n,)
            Event rate per sample, events per minute.

        Returns
        -------
        ndarray of int, shape (n_events,)
            Sorted onset offsets from the block start, samples.
        """
        cum = cumulative_rate(rate_per_min, 60.0 * self.sfreq)
        total = float(cum[-1]) if cum.size else 0.0
        count = self.rng.poisson(total) if total > 0 else 0
        if count == 0:
            return np.zeros(0, dtype=np.int64)
        u = np.sort(self.rng.uniform(0.0, total, count))
        return np.minimum(np.searchsorted(cum, u), self.n - 1).astype(np.int64)
