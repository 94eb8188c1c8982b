"""Accelerometer (ACC X/Y/Z, milli-g): head posture, breathing, movements; slow and held.

The head's posture sets the gravity vector (supine, left, right, prone, with an individual
tilt); posture changes happen with body movements and awakenings and take 1-2 s. Breathing
rocks the head by a few milli-g; movements add large jerky accelerations. The sensor runs at a
lower rate (about 32 Hz) and each reading is held until the next one.
"""

from __future__ import annotations

import numpy as np

from ..stages import W
from ._kernels import add_held
from .context import BlockContext

ROWS = (7, 8, 9)
_ROWS = np.array(ROWS, dtype=np.int64)
POSTURES = {
    "supine": (0.0, 0.0, 1000.0),
    "left": (-1000.0, 0.0, 0.0),
    "right": (1000.0, 0.0, 0.0),
    "prone": (0.0, 0.0, -1000.0),
}


def _unit(v: np.ndarray) -> np.ndarray:
    return 1000.0 * v / np.linalg.norm(v)


class Accelerometer:
    """Head posture and acceleration state, advanced block by block.

    Parameters
    ----------
    sfreq : float
        Sampling rate of the output (the main rate), Hz.
    n : int
        Block length, samples.
    rng : numpy.random.Generator
        Draws the individual tilt and the first posture.
    """

    def __init__(self, sfreq: float, n: int, rng: np.random.Generator):
        self.sfreq = sfreq
        self.hold = self._hold_factor(sfreq, n)
        self.tilt = rng.normal(0.0, 120.0, 3)
        self.vec = _unit(np.array(POSTURES["supine"]) + self.tilt)
        self.target = self.vec.copy()
        self.t0 = 0
        self.t1 = 0
        self.origin = self.vec.copy()
        self.posture = "supine"

    @staticmethod
    def _hold_factor(sfreq: float, n: int) -> int:
        best = 1
        for d in range(1, n + 1):
            if n % d == 0 and sfreq / d >= 25.0:
                best = d
        return best

    def generate(self, ctx: BlockContext, buf: np.ndarray, resp: np.ndarray) -> None:
        """Write the accelerometer of one block into ``buf`` rows ``ROWS``.

        Parameters
        ----------
        ctx : BlockContext
            The block.
        buf : ndarray, shape (n_channels, n + tail)
            Internal signal buffer (modified in place), milli-g for these rows.
        resp : ndarray, shape (n,)
            Breathing signal of the block (-1..1).
        """
        rng, n, fs, h = ctx.rng, ctx.n, self.sfreq, self.hold
        changes = np.zeros(0, dtype=np.int64)  # posture changes: wake and movements
        if ctx.in_mix(W) or ctx.movement.any():
            changes = ctx.event_onsets(0.15 * ctx.w[:, W] + 3.0 * ctx.movement)
        idx = np.arange(ctx.start, ctx.start + n, h)  # sensor sample times
        out = np.empty((idx.size, 3))
        cuts = [int(-(-c // h)) for c in changes]  # first sensor sample after each change
        prev = 0
        for c, cl in zip(list(changes) + [n], cuts + [idx.size], strict=True):
            seg = idx[prev:cl]
            if seg.size:
                span = max(self.t1 - self.t0, 1)
                u = np.clip((seg - self.t0) / span, 0.0, 1.0)[:, None]
                u = u * u * (3 - 2 * u)
                out[prev:cl] = self.origin + (self.target - self.origin) * u
            if c < n:
                self.origin = out[cl - 1].copy() if cl > 0 else self.vec.copy()
                names = [p for p in POSTURES if p != self.posture]
                self.posture = names[int(rng.integers(len(names)))]
                jitter = rng.normal(0.0, 60.0, 3)
                self.target = _unit(np.array(POSTURES[self.posture]) + self.tilt + jitter)
                self.t0 = ctx.start + int(c)
                self.t1 = self.t0 + int(rng.uniform(1.0, 2.0) * fs)
            prev = cl
        self.vec = out[-1].copy()
        out[:, 2] += 4.0 * resp[::h]
        out += (150.0 * ctx.movement[::h])[:, None] * rng.standard_normal((idx.size, 3))
        out += rng.standard_normal((idx.size, 3))
        add_held(buf, _ROWS, out, h)  # each reading held until the next
