"""Sleeper profiles: the architecture and physiology shifts of each kind of sleeper (DESIGN 4).

``healthy``
    Normal adult: sleep-onset latency 10-20 min, 4-6 ultradian cycles of 90-110 min, N3 in the
    first third, REM periods lengthening toward morning (first ~5-10 min, last 20-40 min), REM
    latency 70-120 min, about ten brief awakenings (WASO 3-10 min), N1 2-5 %, N2 45-55 %, N3
    13-23 %, R 20-25 %; fragmented like real nights (~13 stage shifts per hour of sleep).
``child``
    School-age child: more and larger slow waves (N3 ~25-30 % of sleep, slow-wave amplitude x1.6,
    EEG x1.3), shorter cycles (75-95 min), few awakenings, faster heart (+15 bpm).
``insomnia``
    Adult with insomnia: long sleep-onset latency (30-60 min), long awakenings after sleep onset,
    more N1 and arousals, less N3, hyperarousal (more beta, +5 bpm).
``nightmare-prone``
    Healthy architecture, but most REM periods from the second one on hold a nightmare (escalating
    sympathetic activation ending in an awakening unless a cue calms it), a bit more beta.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsp.validate import check_option, validate_type


@dataclass(frozen=True)
class Profile:
    """Statistics of one kind of sleeper.

    Parameters
    ----------
    name : str
        Profile name (a key of ``PROFILES``).
    description : str
        One line for ``--help`` texts.
    sol_min : tuple of float
        Range of the sleep-onset latency, minutes (uniform draw).
    onset_n1_epochs : tuple of int
        Range of the N1 epochs at sleep onset and after each awakening.
    cycle_min : tuple of float
        Range of the ultradian cycle length, minutes.
    n3_min : tuple of float
        Mean N3 minutes in cycle 1, 2, ... (0 beyond the tuple).
    rem_min : tuple of float
        Mean REM minutes in cycle 1, 2, ... (the last value beyond the tuple).
    wake_after_rem_p : float
        Probability of a brief awakening at the end of a REM period.
    rem_frac : float
        REM share of the time from sleep onset to the end of the night when whole cycles fit
        (shared between cycles in the proportions of ``rem_min``).
    n3_frac : float
        N3 share of that time (shared in the proportions of ``n3_min``).
    n1_per_h : float
        Short N1 interludes (1-2 epochs) in N2, per hour of N2.
    awakenings_per_h : float
        Spontaneous brief awakenings (1-2 epochs) in NREM sleep, per hour of sleep.
    long_wakes : tuple of int
        Range of the number of long awakenings per night (insomnia).
    long_wake_min : tuple of float
        Range of the length of a long awakening, minutes.
    arousals_per_h : float
        Cortical arousals (3-15 s, no stage change) per hour of sleep.
    nightmare_p : float
        Probability that a REM period from cycle ``nightmare_from_cycle`` on holds a nightmare.
    nightmare_from_cycle : int
        First cycle (0-based) whose REM period may hold a nightmare.
    eeg_scale : float
        Factor on every EEG amplitude.
    sw_scale : float
        Extra factor on slow waves and delta.
    beta_scale : float
        Factor on beta activity (hyperarousal).
    hr_offset : float
        Offset of the resting heart rate, beats per minute.
    """

    name: str
    description: str
    sol_min: tuple[float, float] = (10.0, 20.0)
    onset_n1_epochs: tuple[int, int] = (4, 8)
    cycle_min: tuple[float, float] = (92.0, 108.0)
    n3_min: tuple[float, ...] = (43.0, 31.0, 15.0, 5.0)
    rem_min: tuple[float, ...] = (10.0, 26.0, 34.0, 38.0, 40.0)
    rem_frac: float = 0.255
    n3_frac: float = 0.235
    n1_per_h: float = 1.2
    wake_after_rem_p: float = 0.35
    awakenings_per_h: float = 1.0
    long_wakes: tuple[int, int] = (0, 0)
    long_wake_min: tuple[float, float] = (5.0, 20.0)
    arousals_per_h: float = 6.0
    nightmare_p: float = 0.0
    nightmare_from_cycle: int = 2
    eeg_scale: float = 1.0
    sw_scale: float = 1.0
    beta_scale: float = 1.0
    hr_offset: float = 0.0


PROFILES: dict[str, Profile] = {
    "healthy": Profile(
        name="healthy",
        description="normal adult: SOL 10-20 min, 4-6 cycles of 90-110 min, N3 early, REM late",
    ),
    "child": Profile(
        name="child",
        description="child: more N3 with larger slow waves, shorter cycles, faster heart",
        sol_min=(12.0, 25.0),
        onset_n1_epochs=(1, 3),
        cycle_min=(75.0, 95.0),
        n3_min=(50.0, 38.0, 22.0, 10.0, 4.0),
        rem_min=(10.0, 15.0, 20.0, 25.0, 30.0),
        rem_frac=0.21,
        n3_frac=0.29,
        wake_after_rem_p=0.15,
        awakenings_per_h=0.15,
        arousals_per_h=4.0,
        eeg_scale=1.3,
        sw_scale=1.6,
        hr_offset=15.0,
    ),
    "insomnia": Profile(
        name="insomnia",
        description="insomnia: SOL 30-60 min, long awakenings, more N1 and arousals, less N3",
        sol_min=(30.0, 60.0),
        onset_n1_epochs=(6, 14),
        n1_per_h=4.0,
        n3_min=(26.0, 15.0, 5.0),
        rem_min=(7.0, 15.0, 20.0, 24.0, 26.0),
        rem_frac=0.19,
        n3_frac=0.12,
        wake_after_rem_p=0.55,
        awakenings_per_h=1.2,
        long_wakes=(2, 4),
        long_wake_min=(6.0, 25.0),
        arousals_per_h=14.0,
        beta_scale=1.7,
        hr_offset=5.0,
    ),
    "nightmare-prone": Profile(
        name="nightmare-prone",
        description="nightmare-prone: nightmares in late REM periods, ending in awakenings",
        wake_after_rem_p=0.4,
        awakenings_per_h=0.6,
        arousals_per_h=9.0,
        nightmare_p=0.75,
        nightmare_from_cycle=1,
        beta_scale=1.2,
    ),
}


def get_profile(name: str) -> Profile:
    """Return the profile called ``name``.

    Parameters
    ----------
    name : str
        One of ``PROFILES``.

    Returns
    -------
    Profile
        The profile.
    """
    validate_type("profile", name, str)
    check_option("profile", name, PROFILES)
    return PROFILES[name]
