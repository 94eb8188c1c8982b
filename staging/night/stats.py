"""Sleep statistics from a hypnogram, with the AASM definitions.

Definitions (Berry et al., AASM Manual for the Scoring of Sleep and Associated Events; the same
as YASA's ``sleep_statistics`` except where noted):

- **TIB** (time in bed): the whole hypnogram, lights off to lights on.
- **Sleep onset**: the first epoch of any sleep stage (N1, N2, N3 or R).
- **SPT** (sleep period time): sleep onset to the end of the last sleep epoch.
- **TST** (total sleep time): N1 + N2 + N3 + R epochs.
- **SE** (sleep efficiency): TST / TIB x 100. **SME**: TST / SPT x 100.
- **SOL** (sleep-onset latency): lights off to sleep onset.
- **REM latency**: sleep onset to the first R epoch (AASM; YASA's ``Lat_REM`` counts from lights
  off, so it equals ``SOL + REM latency``).
- **WASO** (wake after sleep onset): W epochs inside the SPT.
- **Stage minutes** and **% of TST** for N1, N2, N3 and R.
- **Stage latencies**: lights off to the first epoch of N1, N2, N3 and R (for R the same as
  YASA's ``Lat_REM``; NaN for a stage that never occurs).
- **Stage shifts**: changes of stage between consecutive scored epochs over the whole night
  (unscored epochs skipped; W counts as a stage).
- **Awakenings**: W bouts inside the SPT (consecutive W epochs count once; the final wake after
  the last sleep epoch is not inside the SPT).
- **Arousal index**: arousals whose onset falls in a sleep epoch, per hour of TST.
- **Nightmare alerts and outcomes**: each alert is "awakening" when a W epoch starts within
  ``outcome_window_s`` after it, else "settled".

Unscored epochs (-1) count in TIB (and in SPT when inside it) but neither as sleep nor wake.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from dsp.validate import check_positive
from headset.stages import EPOCH_S, N1, N2, N3, UNSCORED, R, W, check_stages

#: Outcome labels of a nightmare alert.
OUTCOMES = ("settled", "awakening")


def as_hypnogram(hypnogram) -> np.ndarray:
    """Check and return a hypnogram as an int8 array.

    Parameters
    ----------
    hypnogram : array_like of int, shape (n_epochs,)
        Stage per epoch: W=0, N1=1, N2=2, N3=3, R=4, unscored=-1.

    Returns
    -------
    ndarray of int8, shape (n_epochs,)
    """
    return check_stages(hypnogram, "hypnogram")


@dataclass
class SleepStats:
    """Sleep statistics of one night (minutes unless noted; NaN where undefined).

    Attributes
    ----------
    tib_min, spt_min, tst_min, waso_min, sol_min, rem_latency_min : float
        Time in bed, sleep period time, total sleep time, wake after sleep onset, sleep-onset
        latency, REM latency from sleep onset (minutes).
    se_pct, sme_pct : float
        Sleep efficiency (TST/TIB) and sleep maintenance efficiency (TST/SPT), percent.
    stage_min : dict of str to float
        Minutes of W (whole night), N1, N2, N3, R and unscored ("?").
    stage_pct_tst : dict of str to float
        N1, N2, N3, R as percent of TST.
    n_awakenings : int
        W bouts inside the SPT.
    stage_shifts : int
        Changes of stage between consecutive scored epochs (:func:`stage_shifts`).
    stage_latency_min : dict of str to float
        Minutes from lights off to the first N1, N2, N3 and R epoch (NaN: never reached).
    n_arousals : int or None
        Arousals in sleep (None when no arousal list was given).
    arousal_index : float
        Arousals per hour of TST (NaN when unknown or TST is 0).
    n_nightmare_alerts : int
        Nightmare alerts (0 when none was given).
    nightmare_outcomes : dict of str to int
        Alerts by outcome ("settled", "awakening").
    epoch_s : float
        Epoch length, seconds.
    sleep_onset_epoch : int or None
        Index of the sleep-onset epoch.
    """

    tib_min: float
    spt_min: float
    tst_min: float
    se_pct: float
    sme_pct: float
    sol_min: float
    rem_latency_min: float
    waso_min: float
    stage_min: dict[str, float]
    stage_pct_tst: dict[str, float]
    n_awakenings: int
    stage_shifts: int
    stage_latency_min: dict[str, float]
    n_arousals: int | None
    arousal_index: float
    n_nightmare_alerts: int
    nightmare_outcomes: dict[str, int] = field(default_factory=dict)
    epoch_s: float = EPOCH_S
    sleep_onset_epoch: int | None = None

    def to_dict(self) -> dict:
        """Return a JSON-ready dict (NaN becomes None, numbers rounded to 0.01)."""

        def clean(v):
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, float | np.floating):
                return None if not math.isfinite(v) else round(float(v), 2)
            if isinstance(v, np.integer):
                return int(v)
            return v

        return {k: clean(v) for k, v in asdict(self).items()}

    @property
    def ended_asleep(self) -> bool:
        """True when the last epoch is sleep: the recording stopped before the sleeper woke.

        Total sleep time and sleep period time are then lower bounds of the night's.
        """
        return bool(np.isfinite(self.sol_min) and self.sol_min + self.spt_min >= self.tib_min)

    @classmethod
    def from_dict(cls, d: dict) -> SleepStats:
        """Return the statistics of :meth:`to_dict` (None becomes NaN).

        Keys added after a summary was written (``stage_shifts``, ``stage_latency_min``) may
        be absent: they become 0 and NaN.

        Raises
        ------
        KeyError, TypeError, ValueError
            ``d`` is not a :meth:`to_dict` of sleep statistics.
        """
        nan = float("nan")

        def num(v):
            return nan if v is None else float(v)

        def nums(v):
            return {str(k): num(x) for k, x in dict(v).items()}

        onset = d.get("sleep_onset_epoch")
        return cls(
            tib_min=num(d["tib_min"]),
            spt_min=num(d["spt_min"]),
            tst_min=num(d["tst_min"]),
            se_pct=num(d["se_pct"]),
            sme_pct=num(d["sme_pct"]),
            sol_min=num(d["sol_min"]),
            rem_latency_min=num(d["rem_latency_min"]),
            waso_min=num(d["waso_min"]),
            stage_min=nums(d["stage_min"]),
            stage_pct_tst=nums(d["stage_pct_tst"]),
            n_awakenings=int(d["n_awakenings"]),
            stage_shifts=int(d.get("stage_shifts", 0)),
            stage_latency_min=nums(d.get("stage_latency_min", {})),
            n_arousals=None if d.get("n_arousals") is None else int(d["n_arousals"]),
            arousal_index=num(d.get("arousal_index")),
            n_nightmare_alerts=int(d.get("n_nightmare_alerts", 0)),
            nightmare_outcomes={str(k): int(v) for k, v in d.get("nightmare_outcomes", {}).items()},
            epoch_s=num(d.get("epoch_s", EPOCH_S)),
            sleep_onset_epoch=None if onset is None else int(onset),
        )


def _bouts(mask: np.ndarray) -> int:
    """Return the number of runs of True in a boolean array."""
    if mask.size == 0:
        return 0
    m = mask.astype(np.int8)
    return int(np.count_nonzero(np.diff(np.concatenate(([0], m))) == 1))


def stage_shifts(hypnogram) -> int:
    """Return the number of stage changes between consecutive scored epochs.

    Parameters
    ----------
    hypnogram : array_like of int, shape (n_epochs,)
        Stage per epoch (W=0, N1=1, N2=2, N3=3, R=4, unscored=-1); unscored epochs are skipped,
        so ``N2 ? N2`` is no shift and ``N2 ? N3`` is one.

    Returns
    -------
    int
        Shifts over the whole night (W counts as a stage).
    """
    h = as_hypnogram(hypnogram)
    s = h[h >= 0]
    return int(np.count_nonzero(np.diff(s))) if s.size > 1 else 0


def alert_outcomes(alert_times_s, hypnogram, epoch_s: float = EPOCH_S, window_s: float = 180.0):
    """Outcome of each nightmare alert from the hypnogram that followed it.

    Parameters
    ----------
    alert_times_s : array_like of float, shape (n_alerts,)
        Alert times, seconds since the recording start.
    hypnogram : array_like of int, shape (n_epochs,)
        Stage per epoch.
    epoch_s : float
        Epoch length, seconds.
    window_s : float
        An alert is an "awakening" when a W epoch starts within this many seconds after it
        (or the alert's own epoch is W), else "settled".

    Returns
    -------
    list of str
        "settled" or "awakening" per alert.
    """
    h = as_hypnogram(hypnogram)
    epoch_s = check_positive("epoch_s", epoch_s)
    out = []
    for t in np.asarray(alert_times_s, dtype=float).ravel():
        e0 = int(t // epoch_s)
        e1 = int((t + window_s) // epoch_s)
        seg = h[max(e0, 0) : min(e1, h.size - 1) + 1]
        out.append("awakening" if np.any(seg == W) else "settled")
    return out


def sleep_statistics(
    hypnogram,
    epoch_s: float = EPOCH_S,
    *,
    arousal_onsets_s=None,
    nightmare_alert_outcomes=None,
) -> SleepStats:
    """Compute the AASM sleep statistics of one night.

    Parameters
    ----------
    hypnogram : array_like of int, shape (n_epochs,)
        Stage per epoch (W=0, N1=1, N2=2, N3=3, R=4, unscored=-1), cropped to lights off ..
        lights on.
    epoch_s : float
        Epoch length in seconds (30 by default).
    arousal_onsets_s : array_like of float, shape (n_arousals,), optional
        Arousal onsets in seconds since the start; those falling in sleep epochs count.
    nightmare_alert_outcomes : sequence of str, optional
        One outcome per nightmare alert ("settled" or "awakening", see :func:`alert_outcomes`).

    Returns
    -------
    SleepStats
        The statistics; see the module docstring for the definitions.
    """
    h = as_hypnogram(hypnogram)
    epoch_s = check_positive("epoch_s", epoch_s)
    to_min = epoch_s / 60.0
    is_sleep = (h >= N1) & (h <= R)
    idx = np.flatnonzero(is_sleep)
    tib = h.size * to_min
    stage_min = {
        "W": np.count_nonzero(h == W) * to_min,
        "N1": np.count_nonzero(h == N1) * to_min,
        "N2": np.count_nonzero(h == N2) * to_min,
        "N3": np.count_nonzero(h == N3) * to_min,
        "R": np.count_nonzero(h == R) * to_min,
        "?": np.count_nonzero(h == UNSCORED) * to_min,
    }
    tst = float(np.count_nonzero(is_sleep)) * to_min
    nan = float("nan")
    if idx.size:
        first, last = int(idx[0]), int(idx[-1])
        spt_h = h[first : last + 1]
        spt = spt_h.size * to_min
        waso = np.count_nonzero(spt_h == W) * to_min
        sol = first * to_min
        rem = np.flatnonzero(h == R)
        rem_lat = (int(rem[0]) - first) * to_min if rem.size else nan
        n_awak = _bouts(spt_h == W)
        pct = {k: stage_min[k] / tst * 100.0 for k in ("N1", "N2", "N3", "R")}
        sme = tst / spt * 100.0
    else:
        first = None
        spt = 0.0
        waso = sol = rem_lat = nan
        n_awak = 0
        pct = dict.fromkeys(("N1", "N2", "N3", "R"), nan)
        sme = nan
    latency = {}
    for name, code in (("N1", N1), ("N2", N2), ("N3", N3), ("R", R)):
        at = np.flatnonzero(h == code)
        latency[name] = float(at[0]) * to_min if at.size else nan
    n_arousals = None
    arousal_index = nan
    if arousal_onsets_s is not None:
        on = np.asarray(arousal_onsets_s, dtype=float).ravel()
        if not np.all(np.isfinite(on)):
            raise ValueError("arousal_onsets_s must be finite seconds.")
        ep = np.floor(on / epoch_s).astype(np.int64)
        inside = (ep >= 0) & (ep < h.size)
        n_arousals = int(np.count_nonzero(is_sleep[ep[inside]]))
        if tst > 0:
            arousal_index = n_arousals / (tst / 60.0)
    outcomes = {k: 0 for k in OUTCOMES}
    n_alerts = 0
    for o in nightmare_alert_outcomes or ():
        if o not in OUTCOMES:
            raise ValueError(f"nightmare outcome must be one of {OUTCOMES}, got {o!r}.")
        outcomes[o] += 1
        n_alerts += 1
    return SleepStats(
        tib_min=float(tib),
        spt_min=float(spt),
        tst_min=float(tst),
        se_pct=float(tst / tib * 100.0),
        sme_pct=float(sme),
        sol_min=float(sol),
        rem_latency_min=float(rem_lat),
        waso_min=float(waso),
        stage_min={k: float(v) for k, v in stage_min.items()},
        stage_pct_tst={k: float(v) for k, v in pct.items()},
        n_awakenings=int(n_awak),
        stage_shifts=stage_shifts(h),
        stage_latency_min=latency,
        n_arousals=n_arousals,
        arousal_index=float(arousal_index),
        n_nightmare_alerts=n_alerts,
        nightmare_outcomes=outcomes,
        epoch_s=epoch_s,
        sleep_onset_epoch=first,
    )
