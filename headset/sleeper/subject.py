"""The seeded subject: who is sleeping (two seeds are two different people).

A :class:`Subject` holds the individual constants that real sleepers differ in: overall EEG
amplitude (skull, age), the alpha peak frequency, spindle frequency and density, the aperiodic
(1/f) exponent, K-complex and slow-wave amplitude, heart rate and its variability, breathing
rate, chin-EMG tone and eye-movement habits. :func:`draw_subject` draws them from a seed within
normal adult ranges, shifted by the profile (a child has larger slow waves and a faster heart).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .profiles import Profile


@dataclass(frozen=True)
class Subject:
    """Individual physiological constants of one simulated person.

    Parameters
    ----------
    eeg_scale : float
        Factor on every EEG amplitude (dimensionless, ~0.75-1.35).
    alpha_freq : float
        Alpha peak frequency, Hz (8.5-11.5).
    alpha_gain : float
        Factor on the eyes-closed alpha amplitude (dimensionless).
    theta_freq : float
        Theta peak frequency of drowsiness and REM, Hz (4.5-7).
    spindle_freq : float
        Sleep-spindle frequency, Hz (11.5-14.5, mostly 12-14).
    spindle_density : float
        Spindles per minute of N2 (2-7).
    spindle_amp : float
        Spindle peak amplitude at C4, µV.
    kc_rate : float
        K-complexes per minute of N2.
    kc_amp : float
        K-complex peak-to-peak amplitude at F4, µV (75-200).
    sw_gain : float
        Factor on slow-wave (delta) amplitude (dimensionless).
    ap_exponent : float
        Aperiodic exponent of the wake EEG power spectrum (power ~ 1/f^x); sleep is steeper.
    hr_wake : float
        Heart rate in relaxed wake, beats per minute.
    hrv : float
        Respiratory sinus arrhythmia amplitude, beats per minute.
    resp_rate : float
        Breathing rate in N3, breaths per minute.
    nightmare_hr : float
        Heart-rate rise at the peak of a nightmare, beats per minute (15-40).
    ecg_amp : float
        R-wave amplitude of the ECG lead, µV.
    emg_tone : float
        Chin-EMG RMS in relaxed wake, µV.
    eog_gain : float
        Factor on eye-movement amplitudes (dimensionless).
    rem_density : float
        Rapid eye movements per minute of REM sleep.
    blink_rate : float
        Blinks per minute with eyes open.
    """

    eeg_scale: float
    alpha_freq: float
    alpha_gain: float
    theta_freq: float
    spindle_freq: float
    spindle_density: float
    spindle_amp: float
    kc_rate: float
    kc_amp: float
    sw_gain: float
    ap_exponent: float
    hr_wake: float
    hrv: float
    resp_rate: float
    nightmare_hr: float
    ecg_amp: float
    emg_tone: float
    eog_gain: float
    rem_density: float
    blink_rate: float

    def as_dict(self) -> dict[str, float]:
        """Return the constants as a plain dict (for reports and manifests)."""
        return asdict(self)


def _clip_normal(rng: np.random.Generator, mean: float, sd: float, lo: float, hi: float) -> float:
    return float(np.clip(rng.normal(mean, sd), lo, hi))


def draw_subject(seed_seq: np.random.SeedSequence, profile: Profile) -> Subject:
    """Draw a subject from a seed.

    Parameters
    ----------
    seed_seq : numpy.random.SeedSequence
        The subject's seed (derived from the session seed).
    profile : Profile
        Shifts the draws (amplitude, slow waves, heart rate).

    Returns
    -------
    Subject
        The drawn person.
    """
    rng = np.random.default_rng(seed_seq)
    eeg_scale = float(np.exp(rng.normal(0.0, 0.15))) * profile.eeg_scale
    return Subject(
        eeg_scale=eeg_scale,
        alpha_freq=_clip_normal(rng, 10.0, 0.7, 8.5, 11.5),
        alpha_gain=float(np.exp(rng.normal(0.0, 0.2))),
        theta_freq=_clip_normal(rng, 5.8, 0.5, 4.5, 7.0),
        spindle_freq=_clip_normal(rng, 13.0, 0.55, 11.8, 14.5),
        spindle_density=float(rng.uniform(3.0, 6.0)),
        spindle_amp=float(rng.uniform(18.0, 32.0)),
        kc_rate=float(rng.uniform(0.8, 2.0)),
        kc_amp=float(rng.uniform(100.0, 170.0)),
        sw_gain=float(np.exp(rng.normal(0.0, 0.12))) * profile.sw_scale,
        ap_exponent=_clip_normal(rng, 1.6, 0.15, 1.2, 2.0),
        hr_wake=_clip_normal(rng, 68.0, 5.0, 58.0, 80.0) + profile.hr_offset,
        hrv=float(rng.uniform(2.0, 5.0)),
        resp_rate=_clip_normal(rng, 14.0, 1.5, 10.0, 18.0),
        nightmare_hr=float(rng.uniform(15.0, 40.0)),
        ecg_amp=float(rng.uniform(700.0, 1500.0)),
        emg_tone=float(rng.uniform(8.0, 16.0)),
        eog_gain=float(np.exp(rng.normal(0.0, 0.15))),
        rem_density=float(rng.uniform(6.0, 14.0)),
        blink_rate=float(rng.uniform(10.0, 22.0)),
    )
