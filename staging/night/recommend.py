"""Natural-sleep recommendations, each with its threshold, guideline and measured number.

Nothing is recommended without a measured reason: a rule whose inputs were not measured is
listed in ``not_evaluated`` with what was missing, never guessed; recordings shorter than
``MIN_TIB_MIN`` (3 h in bed) do not count as nights. The rules, their triggers and sources:

- ``sleep_duration``: mean TST below the range for age. AASM consensus (Paruthi et al.,
  J Clin Sleep Med 2016) for 4 months to 18 years; AASM/SRS (Watson et al., Sleep 2015) for
  18-60; NSF (Hirshkowitz et al., Sleep Health 2015) for 61 and over.
- ``sleep_efficiency``: mean SE < 85 %. NSF sleep quality recommendations (Ohayon et al.,
  Sleep Health 2017).
- ``sleep_latency``: mean SOL > 30 min. Quantitative insomnia criteria (Lichstein et al.,
  Behav Res Ther 2003); AASM insomnia guideline (Schutte-Rodin et al., J Clin Sleep Med 2008).
- ``waso``: mean WASO > 30 min. Same sources as ``sleep_latency``.
- ``regularity``: SD of the sleep-onset clock time > 60 min over >= 3 nights. NSF consensus on
  sleep regularity (Sletten et al., Sleep Health 2023); the 60-min threshold is dreamnet's
  operational choice (the consensus gives no number).
- ``nightmares``: >= 1 night with nightmares per week (nights with alerts / nights x 7).
  ICSD-3 / DSM-5 severity (moderate: >= 1 per week); AASM position paper on nightmare
  disorder (Morgenthaler et al., J Clin Sleep Med 2018).
- ``late_immersive``: an immersive session ending < 60 min before lights off. AASM healthy
  sleep habits (no electronic devices before bed); AAP (screens off 1 h before bedtime for
  children).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np

from .stats import SleepStats

#: (age from, age to (exclusive), min hours, max hours, source) of sleep per 24 h.
DURATION_FOR_AGE: tuple[tuple[float, float, float, float, str], ...] = (
    (0.33, 1.0, 12.0, 16.0, "AASM consensus, Paruthi et al., J Clin Sleep Med 2016"),
    (1.0, 3.0, 11.0, 14.0, "AASM consensus, Paruthi et al., J Clin Sleep Med 2016"),
    (3.0, 6.0, 10.0, 13.0, "AASM consensus, Paruthi et al., J Clin Sleep Med 2016"),
    (6.0, 13.0, 9.0, 12.0, "AASM consensus, Paruthi et al., J Clin Sleep Med 2016"),
    (13.0, 18.0, 8.0, 10.0, "AASM consensus, Paruthi et al., J Clin Sleep Med 2016"),
    (18.0, 61.0, 7.0, float("inf"), "AASM/SRS consensus, Watson et al., Sleep 2015"),
    (61.0, 65.0, 7.0, 9.0, "NSF, Hirshkowitz et al., Sleep Health 2015"),
    (65.0, 130.0, 7.0, 8.0, "NSF, Hirshkowitz et al., Sleep Health 2015"),
)

SE_MIN_PCT = 85.0
SOL_MAX_MIN = 30.0
WASO_MAX_MIN = 30.0
REGULARITY_SD_MAX_MIN = 60.0
REGULARITY_MIN_NIGHTS = 3
NIGHTMARE_NIGHTS_PER_WEEK = 1.0
IMMERSIVE_GAP_MIN = 60.0
#: Nights with less time in bed do not measure a night's sleep: they are left out.
MIN_TIB_MIN = 180.0

_SRC_QUALITY = "NSF sleep quality recommendations, Ohayon et al., Sleep Health 2017"
_SRC_INSOMNIA = (
    "Lichstein et al., Behav Res Ther 2003 (quantitative insomnia criteria); "
    "AASM guideline, Schutte-Rodin et al., J Clin Sleep Med 2008"
)
_SRC_REGULAR = "NSF consensus on sleep regularity, Sletten et al., Sleep Health 2023"
_SRC_NIGHTMARE = (
    "ICSD-3 / DSM-5 nightmare disorder severity (>= 1 per week: moderate); AASM position "
    "paper, Morgenthaler et al., J Clin Sleep Med 2018 (image rehearsal therapy)"
)
_SRC_SCREENS = (
    "AASM healthy sleep habits (no electronic devices before bed); American Academy of "
    "Pediatrics (screens off 1 h before bedtime for children)"
)


@dataclass
class NightRecord:
    """What was measured on one night.

    Parameters
    ----------
    stats : SleepStats
        The night's statistics (:func:`staging.night.stats.sleep_statistics`).
    lights_off : datetime, optional
        Clock time of the recording start (lights off).
    immersive_end : sequence of datetime
        End times of immersive sessions (VR, games) in the evening before this night.
    n_nightmares : int, optional
        Nightmare episodes of the night; defaults to ``stats.n_nightmare_alerts``.
    """

    stats: SleepStats
    lights_off: datetime | None = None
    immersive_end: Sequence[datetime] = field(default_factory=tuple)
    n_nightmares: int | None = None

    @property
    def nightmares(self) -> int:
        """Nightmares of the night (alerts when not given)."""
        return self.stats.n_nightmare_alerts if self.n_nightmares is None else self.n_nightmares

    @property
    def sleep_onset(self) -> datetime | None:
        """Clock time of sleep onset, or None when lights off or sleep onset is unknown."""
        if self.lights_off is None or not np.isfinite(self.stats.sol_min):
            return None
        from datetime import timedelta

        return self.lights_off + timedelta(minutes=self.stats.sol_min)


@dataclass(frozen=True)
class Recommendation:
    """One recommendation, with the measurement that triggered it.

    Attributes
    ----------
    rule : str
        Rule identifier (``sleep_duration``, ``sleep_efficiency``, ...).
    title : str
        One-line finding.
    advice : str
        What to do.
    measured : str
        The measured number(s) that triggered the rule, in words.
    threshold : str
        The rule's threshold.
    guideline : str
        Where the threshold comes from.
    value : float
        The measured value compared with the threshold.
    nights : int
        Nights the measurement is based on.
    """

    rule: str
    title: str
    advice: str
    measured: str
    threshold: str
    guideline: str
    value: float
    nights: int

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        d = asdict(self)
        d["value"] = round(float(self.value), 2)
        return d


@dataclass
class RecommendationResult:
    """Recommendations and the rules that could not be evaluated.

    Attributes
    ----------
    recommendations : list of Recommendation
        Triggered rules, most important first.
    not_evaluated : dict of str to str
        Rule -> what was missing.
    passed : dict of str to str
        Rule -> the measurement that was within the threshold.
    """

    recommendations: list[Recommendation]
    not_evaluated: dict[str, str]
    passed: dict[str, str]

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        return {
            "recommendations": [r.to_dict() for r in self.recommendations],
            "not_evaluated": dict(self.not_evaluated),
            "passed": dict(self.passed),
        }


def duration_range_for_age(age_years: float) -> tuple[float, float, str]:
    """Recommended hours of sleep per 24 h for an age.

    Parameters
    ----------
    age_years : float
        Age in years (at least 4 months = 0.33).

    Returns
    -------
    (min_h, max_h, source) : tuple of float, float, str
        The range in hours (max may be inf) and its guideline.
    """
    a = float(age_years)
    if not np.isfinite(a):
        raise ValueError(f"age_years must be a finite number, got {age_years!r}.")
    for lo, hi, mn, mx, src in DURATION_FOR_AGE:
        if lo <= a < hi:
            return mn, mx, src
    raise ValueError(f"age_years must be between 0.33 (4 months) and 130, got {age_years!r}.")


def _fmt_nights(n):
    return "1 night" if n == 1 else f"{n} nights"


def _mean_rule(records, attr, name, title, advice, threshold, source, limit, above, unit, out):
    vals = [getattr(r.stats, attr) for r in records]
    vals = [v for v in vals if np.isfinite(v)]
    if not vals:
        out.not_evaluated[name] = f"{attr} undefined (no sleep recorded)"
        return
    mean = float(np.mean(vals))
    n_bad = sum((v > limit) if above else (v < limit) for v in vals)
    measured = f"mean {mean:.0f} {unit} over {_fmt_nights(len(vals))}"
    if len(vals) > 1:
        measured += f" ({n_bad} of {len(vals)} nights beyond the threshold)"
    if (mean > limit) if above else (mean < limit):
        out.recommendations.append(
            Recommendation(name, title, advice, measured, threshold, source, mean, len(vals))
        )
    else:
        out.passed[name] = measured


def recommend(
    nights: Sequence[NightRecord | SleepStats], age_years: float | None = None
) -> RecommendationResult:
    """Evaluate every rule on the measured nights.

    Parameters
    ----------
    nights : sequence of NightRecord or SleepStats
        One entry per recorded night (oldest first); bare ``SleepStats`` carry no clock times.
    age_years : float, optional
        Age of the sleeper; without it the duration rule is not evaluated.

    Returns
    -------
    RecommendationResult
        Triggered recommendations (each citing its measured number and guideline), rules that
        passed, and rules not evaluated with the reason.
    """
    if not len(nights):
        raise ValueError("recommend needs at least one night.")
    records = [n if isinstance(n, NightRecord) else NightRecord(n) for n in nights]
    for r in records:
        if not isinstance(r.stats, SleepStats):
            raise TypeError(f"stats must be SleepStats, got {type(r.stats).__name__}.")
    out = RecommendationResult([], {}, {})
    short = [r for r in records if not r.stats.tib_min >= MIN_TIB_MIN]
    records = [r for r in records if r.stats.tib_min >= MIN_TIB_MIN]
    if short:
        out.not_evaluated["short_recordings"] = (
            f"{len(short)} recording(s) shorter than {MIN_TIB_MIN / 60:g} h in bed left out "
            f"(shortest {min(r.stats.tib_min for r in short):.0f} min)"
        )
    if not records:
        for rule in ("sleep_duration", "sleep_efficiency", "sleep_latency", "waso",
                     "regularity", "nightmares", "late_immersive"):  # fmt: skip
            out.not_evaluated[rule] = f"no recording of at least {MIN_TIB_MIN / 60:g} h in bed"
        return out
    n = len(records)

    # sleep duration for age
    if age_years is None:
        out.not_evaluated["sleep_duration"] = "age not given"
    else:
        mn, mx, src = duration_range_for_age(age_years)
        tst_h = float(np.mean([r.stats.tst_min for r in records])) / 60.0
        rng_txt = f"{mn:g}-{mx:g} h" if np.isfinite(mx) else f">= {mn:g} h"
        measured = f"mean total sleep time {tst_h:.1f} h over {_fmt_nights(n)}"
        if tst_h < mn:
            out.recommendations.append(
                Recommendation(
                    "sleep_duration",
                    f"Sleep duration below the recommended {rng_txt} for age {age_years:g}",
                    "Move bedtime earlier or wake later to give more time for sleep; keep the "
                    "schedule the same on all days (for children, naps count toward the total).",
                    measured,
                    f"< {mn:g} h per 24 h at age {age_years:g}",
                    src,
                    tst_h,
                    n,
                )
            )
        else:
            out.passed["sleep_duration"] = measured

    _mean_rule(
        records,
        "se_pct",
        "sleep_efficiency",
        "Low sleep efficiency: much of the time in bed is spent awake",
        "Go to bed only when sleepy, get up if unable to sleep for about 20 minutes, and keep "
        "the time in bed close to the time actually slept (stimulus control / sleep restriction "
        "as used in CBT-I).",
        f"< {SE_MIN_PCT:g} %",
        _SRC_QUALITY,
        SE_MIN_PCT,
        False,
        "%",
        out,
    )
    _mean_rule(
        records,
        "sol_min",
        "sleep_latency",
        "Long time to fall asleep",
        "Keep a wind-down routine without screens, avoid caffeine after midday, and go to bed "
        "when sleepy; a persistent pattern is worth discussing with a sleep clinician.",
        f"> {SOL_MAX_MIN:g} min",
        _SRC_INSOMNIA,
        SOL_MAX_MIN,
        True,
        "min",
        out,
    )
    _mean_rule(
        records,
        "waso_min",
        "waso",
        "Long wake periods after falling asleep",
        "Keep the bedroom dark, quiet and cool, limit fluids and alcohol in the evening; "
        "a persistent pattern is worth discussing with a sleep clinician.",
        f"> {WASO_MAX_MIN:g} min",
        _SRC_INSOMNIA,
        WASO_MAX_MIN,
        True,
        "min",
        out,
    )

    # regularity across nights
    onsets = [r.sleep_onset for r in records if r.sleep_onset is not None]
    if len(onsets) < REGULARITY_MIN_NIGHTS:
        out.not_evaluated["regularity"] = (
            f"needs sleep-onset clock times on >= {REGULARITY_MIN_NIGHTS} nights, "
            f"have {len(onsets)}"
        )
    else:
        # minutes relative to noon so that 23:30 and 00:30 are an hour apart
        mins = np.array([((o.hour - 12) % 24) * 60 + o.minute + o.second / 60 for o in onsets])
        sd = float(np.std(mins, ddof=1))
        measured = f"SD of sleep-onset time {sd:.0f} min over {_fmt_nights(len(onsets))}"
        if sd > REGULARITY_SD_MAX_MIN:
            out.recommendations.append(
                Recommendation(
                    "regularity",
                    "Irregular sleep timing across nights",
                    "Go to bed and get up at the same times every day, weekends included.",
                    measured,
                    f"SD > {REGULARITY_SD_MAX_MIN:g} min over >= {REGULARITY_MIN_NIGHTS} nights",
                    _SRC_REGULAR,
                    sd,
                    len(onsets),
                )
            )
        else:
            out.passed["regularity"] = measured

    # nightmare frequency
    with_nm = sum(1 for r in records if r.nightmares > 0)
    total_nm = sum(r.nightmares for r in records)
    per_week = with_nm / n * 7.0
    measured = (
        f"{total_nm} nightmare alert(s) on {with_nm} of {_fmt_nights(n)} "
        f"(= {per_week:.1f} nights per week)"
    )
    if with_nm and per_week >= NIGHTMARE_NIGHTS_PER_WEEK:
        out.recommendations.append(
            Recommendation(
                "nightmares",
                "Frequent nightmares",
                "Discuss with a clinician: image rehearsal therapy is the recommended first "
                "treatment for nightmare disorder; keep a regular schedule and a calm bedtime "
                "routine.",
                measured,
                f">= {NIGHTMARE_NIGHTS_PER_WEEK:g} night with nightmares per week",
                _SRC_NIGHTMARE,
                per_week,
                n,
            )
        )
    else:
        out.passed["nightmares"] = measured

    # late-night immersive sessions
    known = [r for r in records if r.lights_off is not None]
    if not any(r.immersive_end for r in known):
        have = "no lights-off time" if not known else "no immersive session logged"
        out.not_evaluated["late_immersive"] = have
    else:
        gaps = []
        for r in known:
            for end in r.immersive_end:
                gap = (r.lights_off - end).total_seconds() / 60.0
                if -5.0 <= gap < 24 * 60:  # ended before (or just at) lights off
                    gaps.append(gap)
        late = [g for g in gaps if g < IMMERSIVE_GAP_MIN]
        measured = (
            f"{len(late)} of {len(gaps)} immersive session(s) ended < {IMMERSIVE_GAP_MIN:g} min "
            "before lights off"
        )
        if late:
            measured += f" (closest {min(late):.0f} min)"
            out.recommendations.append(
                Recommendation(
                    "late_immersive",
                    "Immersive sessions late in the evening",
                    f"End immersive sessions (VR, games) at least {IMMERSIVE_GAP_MIN:g} minutes "
                    "before lights off and keep the last hour calm.",
                    measured,
                    f"session end < {IMMERSIVE_GAP_MIN:g} min before lights off",
                    _SRC_SCREENS,
                    float(min(late)),
                    len(known),
                )
            )
        else:
            out.passed["late_immersive"] = measured

    order = [
        "nightmares",
        "sleep_duration",
        "sleep_efficiency",
        "sleep_latency",
        "waso",
        "regularity",
        "late_immersive",
    ]
    out.recommendations.sort(key=lambda r: order.index(r.rule))
    return out
