"""Ward-level events: several beds aroused at once is a disturbance of the room, not nightmares.

:class:`DisturbanceDetector` is fed the arousals each bed's monitor detected (bed, onset,
duration; in any order, as late as the detectors report them) and finds the moments when at
least ``min_beds`` different beds were aroused within ``window_s`` seconds of each other: a
noise, a light or a draught that reached the whole room. An arousal of another bed that starts
within ``window_s`` of a disturbance's onset joins it (the ward annotates that bed too). The
onset is the median of the beds' arousal onsets, the room's moment: a bed that happened to wake
a few seconds before the noise belongs to the disturbance but does not move its onset, and the
awakening a noise causes (an epoch scored W, reported at the start of the next epoch, up to
30 s after the noise) joins the disturbance it belongs to instead of starting a second one.
It decides from the arousals alone, so the same arousals give the same disturbances whatever
the order they arrived in, as long as they arrive before :meth:`DisturbanceDetector.update`
is asked about a time ``window_s + latency_s`` after them.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

#: Default: beds aroused together that make a disturbance of the room.
MIN_BEDS = 3
#: Default: seconds within which their arousals must start.
WINDOW_S = 30.0
#: Default: share of the ward's running beds a disturbance must also reach (a room noise
#: arouses about two thirds of the sleepers; in a 16-bed ward 3-4 spontaneous arousals fall
#: within 30 s about once an hour, and after a noise the sleepers' nights run in step for a
#: while: 6-7 beds together, seen in seeded wards).
QUORUM = 0.5


@dataclass
class Disturbance:
    """A disturbance of the room: the beds it aroused and when.

    Attributes
    ----------
    id : int
        Number of the disturbance in the night (1, 2...).
    onset : float
        Median of the beds' arousal onsets, session seconds (the room's moment).
    end : float
        Last arousal end, session seconds.
    beds : dict
        Bed name -> (onset, end) of its arousal (the first one in the window).
    """

    id: int
    onset: float
    end: float
    beds: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """Seconds from the onset to the last arousal end."""
        return self.end - self.onset


class DisturbanceDetector:
    """Find arousals of several beds within a short window (see the module docstring).

    Parameters
    ----------
    min_beds : int
        Distinct beds that must be aroused (>= 2).
    window_s : float
        Seconds within which their arousal onsets must lie (> 0).
    latency_s : float
        Seconds an arousal may be reported after its onset (the bed detectors' delay); the
        detector keeps arousals this long beyond the window.
    quorum : float
        Share of the ward's running beds that must also be reached (0-1): in a large ward,
        a few spontaneous arousals fall within any 30 s, a noise arouses most sleepers.
        The beds needed are ``max(min_beds, ceil(quorum * n_beds))``.
    """

    def __init__(
        self,
        min_beds: int = MIN_BEDS,
        window_s: float = WINDOW_S,
        latency_s: float = 60.0,
        quorum: float = QUORUM,
    ):
        if isinstance(min_beds, bool) or not isinstance(min_beds, int) or min_beds < 2:
            raise ValueError(f"min_beds must be an int >= 2, got {min_beds!r}")
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0 seconds, got {window_s!r}")
        if not latency_s >= 0:
            raise ValueError(f"latency_s must be >= 0 seconds, got {latency_s!r}")
        if not 0.0 <= quorum <= 1.0:
            raise ValueError(f"quorum must be within 0-1, got {quorum!r}")
        self.quorum = float(quorum)
        self.min_beds = min_beds
        self.window_s = float(window_s)
        self.latency_s = float(latency_s)
        self.found: list[Disturbance] = []
        self._arousals: list[tuple[float, float, str]] = []  # (onset, end, bed), unassigned

    def add(self, bed: str, onset: float, duration: float) -> None:
        """Take one detected arousal of ``bed`` (session seconds)."""
        self._arousals.append((float(onset), float(onset) + max(float(duration), 0.0), bed))

    def _window(self, i: int):
        """Return the unassigned arousals within ``window_s`` of arousal ``i``, and their beds."""
        first = self._arousals[i][0]
        group = [a for a in self._arousals[i:] if a[0] <= first + self.window_s]
        beds: dict[str, tuple[float, float]] = {}
        for onset, end, bed in group:
            beds.setdefault(bed, (onset, end))
        return group, beds

    def needed(self, n_beds: int | None) -> int:
        """Return the beds that make a disturbance in a ward of ``n_beds`` running beds."""
        if n_beds is None:
            return self.min_beds
        return max(self.min_beds, math.ceil(self.quorum * n_beds - 1e-9))

    def update(self, t: float, n_beds: int | None = None) -> list[tuple[Disturbance, list[str]]]:
        """Decide what the arousals received so far show, as of session time ``t``.

        ``n_beds`` is the number of beds running (for the quorum; None: ``min_beds`` only).

        Returns
        -------
        list of (Disturbance, list of str)
            Each disturbance found or grown now, with the beds new to it (to annotate).
        """
        out: dict[int, tuple[Disturbance, list[str]]] = {}
        self._arousals.sort()
        # join open disturbances
        keep = []
        for a in self._arousals:
            d = next((d for d in self.found if abs(a[0] - d.onset) <= self.window_s), None)
            if d is None:
                keep.append(a)
                continue
            d.end = max(d.end, a[1])
            if a[2] not in d.beds:
                d.beds[a[2]] = (a[0], a[1])
                out.setdefault(d.id, (d, []))[1].append(a[2])
        self._arousals = keep
        # new disturbances: a window of onsets with enough distinct beds
        need = self.needed(n_beds)
        i = 0
        while i < len(self._arousals):
            group, beds = self._window(i)
            if len(beds) >= need:
                # the densest window that starts within this one: a spontaneous arousal just
                # before the room's noise does not become the disturbance's onset
                for j in range(i + 1, i + len(group)):
                    g2, b2 = self._window(j)
                    if len(b2) > len(beds):
                        group, beds = g2, b2
                onset = float(statistics.median(b[0] for b in beds.values()))
                d = Disturbance(len(self.found) + 1, onset, max(a[1] for a in group), beds)
                self.found.append(d)
                out[d.id] = (d, list(beds))
                self._arousals = [a for a in self._arousals if a not in group]
                continue
            i += 1
        # forget arousals that can no longer be part of a disturbance
        horizon = t - self.window_s - self.latency_s
        self._arousals = [a for a in self._arousals if a[0] >= horizon]
        return list(out.values())
