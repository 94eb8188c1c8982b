"""Heart and breathing: heart rate by stage, variability, nightmare tachycardia, the ECG lead.

Heart rate = the subject's relaxed-wake rate, lower in deeper NREM (lowest and most regular in
N3), variable in REM, + arousal and movement surges + the nightmare's sympathetic rise (up to
+15-40 bpm at its peak) + respiratory sinus arrhythmia + a slow random fluctuation. Beats are
placed by integrating the rate; each beat adds a P-QRS-T template whose R peak sample is
recorded (``Sleeper.beat_samples``). Breathing (used by the accelerometer and the ECG baseline)
is faster in wake, REM and nightmares.
"""

from __future__ import annotations

import numpy as np

from . import waveforms as wf
from ._kernels import beat_onsets, heart_rate, ramp_phase
from .context import BlockContext
from .subject import Subject

ROW = 6
#: Heart-rate offset from relaxed wake (bpm) in W, N1, N2, N3, R.
HR_OFFSET = np.array([0.0, -3.0, -6.0, -9.0, -2.0])
#: Standard deviation of the slow heart-rate fluctuation (bpm) per stage.
HR_LF_SD = np.array([2.5, 2.0, 1.2, 0.6, 3.0])
#: Breathing-rate factor per stage, and its irregularity.
RESP_FACTOR = np.array([1.1, 1.05, 1.0, 0.95, 1.12])
RESP_JITTER = np.array([0.1, 0.08, 0.04, 0.02, 0.15])
PRE_R = 0.25  # seconds from the template start to the R peak


class Heart:
    """Heart and breathing state, advanced block by block.

    Parameters
    ----------
    subject : Subject
        The person.
    sfreq : float
        Sampling rate, Hz.
    """

    def __init__(self, subject: Subject, sfreq: float):
        self.s = subject
        self.sfreq = sfreq
        self.beat_phase = 0.5
        self.resp_phase = 0.0
        self.lf = 0.0
        self.resp_lf = 0.0
        self.pre = int(round(PRE_R * sfreq))
        self._templates: dict[int, np.ndarray] = {}

    def _beat(self, rr: float) -> np.ndarray:
        key = int(round(rr * 100.0))  # templates cached per 10 ms of RR interval
        t = self._templates.get(key)
        if t is None:
            t = wf.ecg_beat(self.sfreq, self.s.ecg_amp, key / 100.0)
            self._templates[key] = t
        return t

    def generate(self, ctx: BlockContext, buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add the ECG of one block into ``buf[ROW]``.

        Parameters
        ----------
        ctx : BlockContext
            The block.
        buf : ndarray, shape (n_channels, n + tail)
            Internal signal buffer, µV (modified in place).

        Returns
        -------
        peaks : ndarray of int64, shape (n_beats,)
            Absolute sample indices of the R peaks placed in this block.
        resp : ndarray, shape (n,)
            Breathing signal (-1..1) of the block.
        """
        s, rng, fs, n = self.s, ctx.rng, self.sfreq, ctx.n
        w = ctx.w
        # slow fluctuations of the heart and breathing rates, ramping over the block
        sd = float(w[0] @ HR_LF_SD)
        lf0, lf1 = self.lf, 0.92 * self.lf + rng.normal(0.0, sd * 0.4)
        self.lf = lf1
        rj = float(w[0] @ RESP_JITTER)
        r0, r1 = self.resp_lf, 0.8 * self.resp_lf + rng.normal(0.0, rj)
        self.resp_lf = r1
        # breathing: faster in nightmares (+6/min) and arousals (+2/min)
        rphase = ramp_phase(
            self.resp_phase, s.resp_rate, ctx.stage_rate(RESP_FACTOR), r0, r1, ctx.nightmare, 6.0,
            ctx.arousal, 2.0, fs,
        )  # fmt: skip
        self.resp_phase = float(rphase[-1] % 1.0)
        resp = np.sin(2 * np.pi * rphase)
        hr = heart_rate(
            s.hr_wake, ctx.stage_rate(HR_OFFSET), lf0, lf1, s.hrv, resp, ctx.arousal, ctx.movement,
            s.nightmare_hr, ctx.nightmare,
        )  # fmt: skip
        starts, last = beat_onsets(self.beat_phase, hr, fs)
        self.beat_phase = last % 1.0
        row = buf[ROW]
        for j in starts:
            rr = 60.0 / hr[j]
            wf.add_at(row, int(j), self._beat(rr))
        row[:n] += 40.0 * resp + 4.0 * rng.standard_normal(n)
        return ctx.start + starts.astype(np.int64) + self.pre, resp
