"""EOG generator: E1-M2 (below the left outer canthus) and E2-M2 (above the right one).

An eye movement moves the corneo-retinal dipole toward one electrode and away from the other,
so it appears with opposite signs on E1 and E2 (anti-phase); frontal EEG reaches both through
the common reference and appears in phase (added by the sleeper's leakage mix). Wake: blinks and
saccades with the eyes open, few movements with them closed; N1: slow rolling eye movements
(> 0.5 s deflections); REM: bursts of rapid eye movements (< 0.5 s rise, 50-325 µV), denser in
a nightmare; N2/N3: none.
"""

from __future__ import annotations

import numpy as np

from ..stages import N1, R, W
from . import waveforms as wf
from .context import BlockContext
from .noise import BankGenerator, powerlaw_psd

ROWS = (3, 4)
#: Gain of a (rightward-positive) eye movement on E1 and E2.
MOVE_GAIN = np.array([-1.0, 0.9])
BLINK_GAIN = np.array([-0.45, 1.0])


class EOGGenerator(BankGenerator):
    """Streams the two EOG derivations block by block.

    Parameters as :class:`~headset.sleeper.noise.BankGenerator`.
    """

    def noise_psd(self, freqs: np.ndarray) -> np.ndarray:
        """Two streams, E1 and E2: ``1/f^1.2`` (see :meth:`BankGenerator.noise_psd`)."""
        return np.tile(2.0 * powerlaw_psd(freqs, 1.2), (2, 1))

    def generate(self, ctx: BlockContext, buf: np.ndarray) -> None:
        """Add the EOG of one block into ``buf`` rows ``ROWS``.

        See :meth:`~headset.sleeper.noise.BankGenerator.generate`.
        """
        s, rng, fs, n = self.s, ctx.rng, self.sfreq, ctx.n
        x = self.bank.block(rng)
        buf[ROWS[0], :n] += x[0]
        buf[ROWS[1], :n] += x[1]
        g = s.eog_gain
        move = np.zeros(n + ctx.tail)
        blinks = np.zeros(n + ctx.tail)
        w, eo, a = ctx.w, ctx.eyes_open, ctx.arousal
        wake = w[:, W]
        # blinks: eyes open, arousals
        rate = s.blink_rate * wake * eo + 1.5 * wake * (1 - eo) + 8.0 * a
        for i in ctx.event_onsets(rate):
            wf.add_at(blinks, int(i), wf.blink(fs, rng.uniform(100.0, 250.0) * g))
        # saccades: eyes open (and arousals)
        rate = 25.0 * wake * eo + 6.0 * a
        for i in ctx.event_onsets(rate):
            amp = rng.choice([-1.0, 1.0]) * rng.uniform(30.0, 150.0) * g
            mv = wf.eye_movement(fs, amp, rng.uniform(0.03, 0.07), 0.7, rng.uniform(0.2, 1.0))
            wf.add_at(move, int(i), mv)
        # slow rolling eye movements: drowsy wake and N1
        rate = 6.0 * w[:, N1] + 1.5 * wake * (1 - eo)
        for i in ctx.event_onsets(rate):
            amp = rng.choice([-1.0, 1.0]) * rng.uniform(40.0, 110.0) * g
            wf.add_at(move, int(i), wf.rolling_eye_movement(fs, amp, rng.uniform(1.0, 4.0)))
        # rapid eye movements in bursts: REM (denser in a nightmare)
        rate = s.rem_density / 2.5 * w[:, R] * (1.0 + 3.0 * ctx.nightmare)
        for i in ctx.event_onsets(rate):
            t = int(i)
            sign = rng.choice([-1.0, 1.0])
            for _ in range(int(rng.integers(1, 5))):
                amp = sign * rng.uniform(50.0, 250.0) * g
                mv = wf.eye_movement(fs, amp, rng.uniform(0.06, 0.2), 0.6, rng.uniform(0.05, 0.4))
                wf.add_at(move, t, mv)
                t += int(rng.uniform(0.3, 1.0) * fs)
                if rng.random() < 0.6:
                    sign = -sign
                if t >= n + ctx.tail - int(3.5 * fs):
                    break
        buf[ROWS[0]] += MOVE_GAIN[0] * move + BLINK_GAIN[0] * blinks
        buf[ROWS[1]] += MOVE_GAIN[1] * move + BLINK_GAIN[1] * blinks
