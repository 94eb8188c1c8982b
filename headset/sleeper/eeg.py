"""EEG generator: F4-M1, C4-M1, O2-M1 with the AASM signatures of each stage (DESIGN 4).

Background: aperiodic 1/f^x activity whose level and exponent follow the stage (steeper in deep
sleep), the sum of three power-law bases (x = 1, 2, 3) fitted per stage. Rhythms: delta / slow
waves (0.5-2 Hz, frontal, large in N3, scaled by the homeostatic slow-wave pressure), theta
(drowsiness, REM), alpha (eyes-closed wake, occipital), beta (eyes-open wake, arousals,
hyperarousal). Transients: spindles and K-complexes (N2), vertex sharp waves (N1), sawtooth
bursts (REM). Arousals and nightmares push alpha and beta up and delta down.
"""

from __future__ import annotations

import numpy as np

from ..stages import N1, N2, N3, R, W
from . import waveforms as wf
from .context import BlockContext
from .noise import BankGenerator, band_psd, bump_psd, powerlaw_psd
from .profiles import Profile
from .subject import Subject

#: Internal rows of the EEG channels (F4, C4, O2).
ROWS = (0, 1, 2)
AP_EXPONENTS = (1.0, 2.0, 3.0)
B_DELTA, B_THETA, B_ALPHA, B_BETA = 3, 4, 5, 6
N_BASES = 7

#: Per-stage aperiodic PSD at 1 Hz (µV^2/Hz) and exponent offset from the subject's wake value.
AP_LEVEL = np.array([12.0, 24.0, 40.0, 70.0, 16.0])
AP_STEEPER = np.array([0.0, 0.3, 0.7, 1.0, 0.6])
#: Per-stage RMS (µV at C4, before subject scaling) of delta, theta, alpha, beta.
RHYTHM_RMS = np.array(
    [
        # delta theta alpha beta
        [2.0, 3.0, 16.0, 3.5],  # W (eyes closed)
        [6.0, 6.0, 1.0, 1.5],  # N1
        [12.0, 3.0, 1.0, 1.0],  # N2
        [42.0, 6.0, 2.0, 1.5],  # N3
        [5.0, 3.0, 1.5, 2.0],  # R
    ]
)
#: Channel factors (F4, C4, O2) for ap, delta, theta, alpha, beta.
CHANNEL_FACTOR = np.array(
    [
        [1.0, 1.15, 1.0, 0.55, 1.0],
        [1.0, 1.0, 1.0, 0.8, 1.0],
        [0.95, 0.75, 0.9, 1.4, 0.9],
    ]
)
#: Spatial correlation of the three EEG sources.
CORR = np.array([[1.0, 0.7, 0.45], [0.7, 1.0, 0.6], [0.45, 0.6, 1.0]])
SPINDLE_CH = np.array([0.75, 1.0, 0.45])
KC_CH = np.array([1.0, 0.8, 0.45])
VERTEX_CH = np.array([0.6, 1.0, 0.3])
SAW_CH = np.array([0.8, 1.0, 0.4])


def fit_aperiodic(level: float, exponent: float) -> np.ndarray:
    """Fit ``level / f^exponent`` (0.5-40 Hz) with the bases ``1/f``, ``1/f^2``, ``1/f^3``.

    Parameters
    ----------
    level : float
        Power density at 1 Hz, µV^2/Hz.
    exponent : float
        Power-law exponent.

    Returns
    -------
    ndarray, shape (3,)
        Non-negative amplitude gains of the three bases, µV/sqrt(Hz) at 1 Hz.
    """
    f = np.geomspace(0.5, 40.0, 60)
    target = level * f ** (-exponent)
    m = np.stack([f ** (-e) for e in AP_EXPONENTS], axis=1) / target[:, None]
    from scipy.optimize import nnls  # imported here: keeps `dreamnet --help` fast

    coef, _ = nnls(m, np.ones_like(f))
    return np.sqrt(coef)


class EEGGenerator(BankGenerator):
    """Streams the three EEG derivations block by block.

    Parameters
    ----------
    subject : Subject
        The person.
    profile : Profile
        The kind of sleeper.
    sfreq, n, overlap
        As :class:`~headset.sleeper.noise.BankGenerator`.
    """

    def __init__(self, subject: Subject, profile: Profile, sfreq: float, n: int, overlap: int):
        self.p = profile
        super().__init__(subject, sfreq, n, overlap)
        self.mix = np.linalg.cholesky(CORR)
        # stage gain table (5 stages, 7 bases) at C4, subject-scaled
        g = np.zeros((5, N_BASES))
        for st in range(5):
            g[st, :3] = fit_aperiodic(AP_LEVEL[st], subject.ap_exponent + AP_STEEPER[st])
        g[:, 3:] = RHYTHM_RMS
        g[:, B_DELTA] *= subject.sw_gain
        g[:, B_ALPHA] *= subject.alpha_gain
        g[:, B_BETA] *= profile.beta_scale
        self.gain = g * subject.eeg_scale
        self.alpha_w = self.gain[W, B_ALPHA]
        self.beta_w = self.gain[W, B_BETA]
        self.theta_n1 = self.gain[N1, B_THETA]
        cf = np.empty((3, N_BASES))
        cf[:, :3] = CHANNEL_FACTOR[:, :1]
        cf[:, 3:] = CHANNEL_FACTOR[:, 1:]
        self.chf = cf

    def noise_psd(self, freqs: np.ndarray) -> np.ndarray:
        """Per EEG source, the ``N_BASES`` aperiodic and rhythm bases (unit gain)."""
        s = self.s
        shapes = [powerlaw_psd(freqs, e) for e in AP_EXPONENTS]
        shapes.append(band_psd(freqs, 0.5, 1.8, order=3))
        shapes.append(bump_psd(freqs, s.theta_freq, 0.9))
        shapes.append(bump_psd(freqs, s.alpha_freq, 0.45))
        shapes.append(band_psd(freqs, 15.0, 28.0, order=3))
        return np.tile(np.stack(shapes), (3, 1))

    def generate(self, ctx: BlockContext, buf: np.ndarray) -> None:
        """Add the EEG of one block into ``buf`` rows ``ROWS``.

        See :meth:`~headset.sleeper.noise.BankGenerator.generate`.
        """
        n = ctx.n
        x = self.bank.block(ctx.rng).reshape(3, N_BASES, n)
        x = np.einsum("cs,sbn->cbn", self.mix, x)
        g = ctx.w @ self.gain  # (n, bases)
        a = ctx.arousal
        nm = ctx.nightmare
        closed = 1.0 - ctx.eyes_open
        g[:, B_ALPHA] *= 0.25 + 0.75 * closed
        g[:, B_BETA] *= 1.0 + 0.8 * ctx.eyes_open
        g[:, B_ALPHA] = np.maximum(g[:, B_ALPHA], self.alpha_w * (0.8 * a + 0.45 * nm))
        g[:, B_BETA] += self.beta_w * (1.2 * a + 1.3 * nm)
        g[:, B_THETA] += self.theta_n1 * 0.3 * a
        g[:, B_DELTA] *= ctx.homeostasis * (1.0 - 0.6 * a * (1.0 - ctx.confusion))
        g[:, :3] *= (1.0 - 0.3 * a)[:, None]
        for c, row in enumerate(ROWS):
            buf[row, :n] += np.einsum("nb,bn->n", g * self.chf[c], x[c])
        self._events(ctx, buf)

    def _events(self, ctx: BlockContext, buf: np.ndarray) -> None:
        s, rng, fs = self.s, ctx.rng, self.sfreq
        scale = s.eeg_scale
        calm = 1.0 - np.maximum(ctx.arousal, ctx.nightmare)
        w = ctx.w
        # spindles: N2 (and some in N3)
        rate = s.spindle_density * (w[:, N2] + 0.35 * w[:, N3] + 0.05 * w[:, N1]) * calm
        for i in ctx.event_onsets(rate):
            self._spindle(buf, int(i), rng, scale)
        # K-complexes: N2, often followed by a spindle
        rate = s.kc_rate * (w[:, N2] + 0.2 * w[:, N3]) * calm
        for i in ctx.event_onsets(rate):
            amp = s.kc_amp * np.exp(rng.normal(0.0, 0.15)) * scale / self.p.eeg_scale
            amp *= np.sqrt(s.sw_gain)
            kc = wf.k_complex(fs, amp, rng.uniform(0.9, 1.2))
            for c, row in enumerate(ROWS):
                wf.add_at(buf[row], int(i), KC_CH[c] * kc)
            if rng.random() < 0.4:
                self._spindle(buf, int(i) + int(0.7 * fs), rng, scale)
        # vertex sharp waves: N1
        rate = 3.0 * w[:, N1] * calm
        for i in ctx.event_onsets(rate):
            vw = wf.vertex_wave(fs, rng.uniform(40.0, 90.0) * scale)
            for c, row in enumerate(ROWS):
                wf.add_at(buf[row], int(i), VERTEX_CH[c] * vw)
        # sawtooth bursts: REM
        rate = 2.5 * w[:, R]
        for i in ctx.event_onsets(rate):
            saw = wf.sawtooth_burst(
                fs, rng.uniform(2.5, 4.5), rng.uniform(1.0, 4.0), rng.uniform(12.0, 30.0) * scale
            )
            for c, row in enumerate(ROWS):
                wf.add_at(buf[row], int(i), SAW_CH[c] * saw)

    def _spindle(self, buf: np.ndarray, i: int, rng: np.random.Generator, scale: float) -> None:
        s, fs = self.s, self.sfreq
        dur = rng.uniform(0.6, 1.8)
        amp = s.spindle_amp * np.exp(rng.normal(0.0, 0.25)) * scale
        freq = s.spindle_freq + rng.normal(0.0, 0.3)
        ph = rng.uniform(0, 2 * np.pi)
        for c, row in enumerate(ROWS):
            f = freq - 1.0 if c == 0 else freq  # slower frontal spindles
            wf.add_at(buf[row], i, SPINDLE_CH[c] * wf.spindle(fs, f, dur, amp, ph))
