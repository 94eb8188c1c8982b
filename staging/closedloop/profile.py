"""The sleeper's profile: a small JSON file per person, learned from earlier nights.

It holds baselines measured in calm REM (heart rate, RMSSD, chin-EMG tone), the arousal index,
and what each cue did in past nightmare episodes. The nightmare detector takes its baselines
from it (instead of learning them during the night), and the intervention policy starts its
ladder at the softest step that has worked for this person. Without a profile (the first
night) everything falls back to population defaults, and :attr:`SleeperProfile.notice` says so.

File format (``format: dreamnet-sleeper-profile``, ``version: 1``)::

    {"format": "dreamnet-sleeper-profile", "version": 1, "name": "Mia", "nights": 3,
     "updated": "2024-03-04T07:02:11",
     "baseline": {"rem_hr_bpm": 84.2, "rem_rmssd_ms": 61.0, "rem_emg_uv": 2.1,
                  "arousal_index": 11.5},
     "cues": {"audio 0.10": {"settled": 3, "woke": 0, "no effect": 1}}}

Baselines are averaged over nights with weight ``max(1/nights, 0.3)`` for the newest, so the
profile follows slow changes (a growing child) without being thrown by one odd night.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..errors import StagingError

FORMAT = "dreamnet-sleeper-profile"
VERSION = 1

#: Population defaults (adult): REM heart rate (bpm), RMSSD in REM (ms), arousal index (/h).
#: Chin-EMG tone depends on electrodes and skin, so it has no population value: it is learned
#: during the night when the profile has none.
POPULATION = {"rem_hr_bpm": 65.0, "rem_rmssd_ms": 40.0, "rem_emg_uv": None, "arousal_index": 15.0}
BASELINE_KEYS = tuple(POPULATION)
OUTCOME_CLASSES = ("settled", "woke", "no effect")


def outcome_class(outcome: str) -> str:
    """Map a cue outcome text to ``settled``, ``woke`` or ``no effect``.

    Parameters
    ----------
    outcome : str
        e.g. the simulator's ``"settled REM"``, ``"settled N2"``, ``"woke"``, ``"arousal"``,
        or the monitor's ``"settled"``/``"awakening"``.

    Returns
    -------
    str
        The class.
    """
    o = outcome.strip().lower()
    if o.startswith("settled"):
        return "settled"
    if o.startswith("woke") or o.startswith("awakening") or o == "wake":
        return "woke"
    return "no effect"


def cue_key(kind: str, level: float) -> str:
    """Key of a cue in the profile's ``cues`` table (``"audio 0.10"``)."""
    return f"{kind} {float(level):.2f}"


@dataclass
class NightSummary:
    """What one night taught about the sleeper (input of :meth:`SleeperProfile.update`).

    Parameters
    ----------
    rem_hr_bpm, rem_rmssd_ms, rem_emg_uv : float or None
        Calm-REM heart rate (bpm), RMSSD (ms) and chin-EMG RMS (µV); None when not measured.
    arousal_index : float or None
        Arousals per hour of sleep.
    cue_outcomes : list of (str, float, str)
        (kind, level, outcome) of each cue sent during a nightmare.
    """

    rem_hr_bpm: float | None = None
    rem_rmssd_ms: float | None = None
    rem_emg_uv: float | None = None
    arousal_index: float | None = None
    cue_outcomes: list[tuple[str, float, str]] = field(default_factory=list)


@dataclass
class SleeperProfile:
    """Per-person baselines and cue history.

    Attributes
    ----------
    name : str
        Who this is (free text).
    nights : int
        Nights learned from (0: population defaults).
    baseline : dict of str to float or None
        ``rem_hr_bpm``, ``rem_rmssd_ms``, ``rem_emg_uv``, ``arousal_index``.
    cues : dict of str to dict of str to int
        ``"kind level"`` -> counts of ``settled``, ``woke``, ``no effect``.
    updated : str
        ISO time of the last update ("" if never).
    source : str
        Where it came from (a path, or "population defaults").
    """

    name: str = ""
    nights: int = 0
    baseline: dict[str, float | None] = field(default_factory=lambda: dict(POPULATION))
    cues: dict[str, dict[str, int]] = field(default_factory=dict)
    updated: str = ""
    source: str = "population defaults"

    @property
    def is_default(self) -> bool:
        """True when nothing was learned yet (population defaults)."""
        return self.nights == 0

    @property
    def notice(self) -> str:
        """One line saying what the detectors and the policy are based on."""
        if self.is_default:
            return (
                "no sleeper profile: population defaults (REM heart rate "
                f"{POPULATION['rem_hr_bpm']:g} bpm, RMSSD {POPULATION['rem_rmssd_ms']:g} ms; "
                "EMG tone learned tonight; ladder starts at its softest step)"
            )
        return f"sleeper profile {self.name or '(unnamed)'}: learned from {self.nights} night(s)"

    # ---- file I/O ---------------------------------------------------------------------------
    @classmethod
    def load(cls, path) -> SleeperProfile:
        """Read a profile file.

        Parameters
        ----------
        path : str or Path
            The JSON file.

        Returns
        -------
        SleeperProfile

        Raises
        ------
        StagingError
            If the file is not a readable profile (one line naming the file and the problem).
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StagingError(f"{path}: sleeper profile not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StagingError(f"{path}: not a readable sleeper profile ({exc})") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def load_or_default(cls, path) -> SleeperProfile:
        """Read a profile, or return population defaults when the file does not exist yet.

        Parameters
        ----------
        path : str, Path or None
            The JSON file (None: defaults).

        Returns
        -------
        SleeperProfile
            Check :attr:`is_default` / :attr:`notice` to tell which.
        """
        if path is None or not Path(path).exists():
            return cls(source="population defaults")
        return cls.load(path)

    @classmethod
    def from_dict(cls, data, source: str = "") -> SleeperProfile:
        """Build a profile from its JSON dict, checking every field."""
        where = source or "profile"
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise StagingError(f"{where}: not a dreamnet sleeper profile (format field missing)")
        if data.get("version") != VERSION:
            raise StagingError(
                f"{where}: unsupported profile version {data.get('version')!r} (want {VERSION})"
            )
        nights = data.get("nights", 0)
        if isinstance(nights, bool) or not isinstance(nights, int) or nights < 0:
            raise StagingError(f"{where}: 'nights' must be a non-negative integer")
        base = dict(POPULATION)
        raw = data.get("baseline", {})
        if not isinstance(raw, dict):
            raise StagingError(f"{where}: 'baseline' must be an object")
        for k, v in raw.items():
            if k not in POPULATION:
                raise StagingError(f"{where}: unknown baseline {k!r}")
            if v is not None and (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not math.isfinite(v)
                or v < 0
            ):
                raise StagingError(f"{where}: baseline {k!r} must be a non-negative number")
            base[k] = None if v is None else float(v)
        cues = {}
        for k, counts in (data.get("cues") or {}).items():
            if not isinstance(counts, dict) or any(
                c not in OUTCOME_CLASSES or not isinstance(n, int) or n < 0
                for c, n in counts.items()
            ):
                raise StagingError(f"{where}: cue record {k!r} must map outcomes to counts")
            cues[str(k)] = {c: int(counts.get(c, 0)) for c in OUTCOME_CLASSES}
        return cls(
            name=str(data.get("name", "")),
            nights=nights,
            baseline=base,
            cues=cues,
            updated=str(data.get("updated", "")),
            source=source,
        )

    def to_dict(self) -> dict:
        """Return the JSON dict of the file."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "nights": self.nights,
            "updated": self.updated,
            "baseline": {
                k: (None if v is None else round(float(v), 3)) for k, v in self.baseline.items()
            },
            "cues": {k: dict(v) for k, v in sorted(self.cues.items())},
        }

    def save(self, path) -> None:
        """Write the profile atomically (a crash leaves the old file or the new one).

        Parameters
        ----------
        path : str or Path
            Destination JSON file.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        with contextlib.ExitStack() as on_error:
            on_error.callback(Path(tmp).unlink, missing_ok=True)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.to_dict(), f, indent=1)
                f.write("\n")
            os.replace(tmp, path)
            on_error.pop_all()
        self.source = str(path)

    # ---- learning ------------------------------------------------------------------------
    def update(self, night: NightSummary, when: datetime | None = None) -> None:
        """Fold one night into the profile.

        Parameters
        ----------
        night : NightSummary
            The night's measurements and cue outcomes; None fields leave a baseline unchanged.
        when : datetime, optional
            Time stamp of the update (default: now).
        """
        n = self.nights + 1
        w = max(1.0 / n, 0.3)
        for k in BASELINE_KEYS:
            v = getattr(night, k)
            if v is None or not math.isfinite(float(v)):
                continue
            old = self.baseline.get(k)
            if self.nights == 0 or old is None:
                self.baseline[k] = float(v)
            else:
                self.baseline[k] = (1.0 - w) * old + w * float(v)
        for kind, level, outcome in night.cue_outcomes:
            rec = self.cues.setdefault(cue_key(kind, level), dict.fromkeys(OUTCOME_CLASSES, 0))
            rec[outcome_class(outcome)] += 1
        self.nights = n
        self.updated = (when or datetime.now()).isoformat(timespec="seconds")

    # ---- personalisation -------------------------------------------------------------------
    def detector_baseline(self) -> dict[str, float | None]:
        """Baselines for the nightmare detector (None: learn tonight).

        The detector is :class:`staging.closedloop.nightmare.NightmareDetector`.

        Returns
        -------
        dict
            ``rem_hr_bpm``, ``rem_rmssd_ms``, ``rem_emg_uv``; the population heart rate is
            not imposed (it is learned in the night's first REM), only a learned one is.
        """
        if self.is_default:
            return {"rem_hr_bpm": None, "rem_rmssd_ms": None, "rem_emg_uv": None}
        return {k: self.baseline.get(k) for k in ("rem_hr_bpm", "rem_rmssd_ms", "rem_emg_uv")}

    def first_step(self, ladder) -> tuple[int, str]:
        """Return the ladder step to start an episode at, and why.

        The softest step is used unless past nights showed it does nothing for this person
        (at least 3 tries, never settled an episode, mostly no effect); the ladder's last step
        (the wake) is never a first step.

        Parameters
        ----------
        ladder : sequence of LadderStep
            The policy's ladder (objects with ``kind`` and ``level``).

        Returns
        -------
        (int, str)
            Ladder index and the reason.
        """
        if self.is_default:
            return 0, "population default: softest step first"
        last = max(0, len(ladder) - 2)
        for i, step in enumerate(ladder):
            rec = self.cues.get(cue_key(step.kind, step.level))
            if i >= last:
                return i, f"earlier steps had no effect; starting at step {i + 1}"
            if rec is None:
                return i, f"step {i + 1} ({cue_key(step.kind, step.level)}) not tried yet"
            tries = sum(rec.values())
            if rec["settled"] > 0 or tries < 3 or rec["no effect"] * 2 <= tries:
                return i, (
                    f"step {i + 1} ({cue_key(step.kind, step.level)}): "
                    f"settled {rec['settled']}, woke {rec['woke']}, no effect "
                    f"{rec['no effect']} in past nights"
                )
        return 0, "softest step first"
