"""The closed loop's event schema: what a detected arousal and a nightmare alert say, once.

The detectors conclude :class:`~staging.closedloop.arousal.ArousalEvent` and
:class:`~staging.closedloop.nightmare.NightmareAlert` objects; everything that passes them on
uses the records below: the monitor's event stream (:mod:`staging.monitor.events` writes
``{"t", "type", **record}`` as one JSON line, ``t`` being the session time at which the monitor
learnt of it), the recording's EDF+ annotation (``annotation``, ``onset``, ``duration``) and the
detectors' own ``to_event()`` (``t`` = the time of the event itself), which the morning report
reads.

Times are seconds since the session start; stages are names (``W N1 N2 N3 R ?``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from headset.stages import stage_name

if TYPE_CHECKING:  # the detectors import this module
    from .closedloop.arousal import ArousalEvent
    from .closedloop.nightmare import NightmareAlert

#: EDF+ annotation text of each event type the detectors make (DESIGN 3).
ANNOTATIONS = {"arousal": "Detected arousal", "nightmare_alert": "Nightmare alert"}


class ArousalRecord(TypedDict):
    """Fields of an ``arousal`` event, in stream order.

    Attributes
    ----------
    stage : str
        Stage of the epoch holding the onset.
    onset, duration : float
        Seconds.
    annotation : str
        ``Detected arousal``.
    band : str
        The band that rose most (``alpha``, ``beta``, ``theta``).
    shift_db : float
        Its largest rise over the background, dB.
    """

    stage: str
    onset: float
    duration: float
    annotation: str
    band: str
    shift_db: float


class NightmareAlertRecord(TypedDict):
    """Fields of a ``nightmare_alert`` event, in stream order (the monitor adds ``alert``, its id).

    Attributes
    ----------
    risk : float
        Risk score at the alert, 0-1.
    evidence : dict
        Per marker: ``value``, ``baseline``, ``unit``, ``evidence``, ``weight``.
    onset : float
        Time of the alert, s.
    duration : float
        0 (an instant).
    annotation : str
        ``Nightmare alert``.
    stage : str
        Stage used (``R``).
    missing : list of str
        Evidence that was not available, with why.
    rising_since : float
        When the risk began to rise in this build-up, s (NaN: not known).
    summary : str
        One line: the risk and the markers that contributed most.
    """

    risk: float
    evidence: dict
    onset: float
    duration: float
    annotation: str
    stage: str
    missing: list[str]
    rising_since: float
    summary: str


def arousal_record(ev: ArousalEvent) -> ArousalRecord:
    """Return the event fields of a detected arousal.

    Parameters
    ----------
    ev : ArousalEvent
        The detector's event.

    Returns
    -------
    ArousalRecord
    """
    return ArousalRecord(
        stage=stage_name(int(ev.stage)),
        onset=float(ev.onset_s),
        duration=float(ev.duration_s),
        annotation=ANNOTATIONS["arousal"],
        band=str(ev.band),
        shift_db=float(ev.shift_db),
    )


def nightmare_alert_record(al: NightmareAlert) -> NightmareAlertRecord:
    """Return the event fields of a nightmare alert.

    Parameters
    ----------
    al : NightmareAlert
        The detector's alert.

    Returns
    -------
    NightmareAlertRecord
    """
    return NightmareAlertRecord(
        risk=float(al.risk),
        evidence=al.evidence,
        onset=float(al.t),
        duration=0.0,
        annotation=ANNOTATIONS["nightmare_alert"],
        stage=stage_name(int(al.stage)),
        missing=list(al.missing),
        rising_since=float(al.rising_since),
        summary=al.summary(),
    )


def to_event(t: float, type: str, record: ArousalRecord | NightmareAlertRecord) -> dict:
    """Return an event-stream object ``{"t": t, "type": type, **record}``.

    Parameters
    ----------
    t : float
        Seconds since the session start at which the event is reported.
    type : str
        ``arousal`` or ``nightmare_alert``.
    record : ArousalRecord or NightmareAlertRecord
        Its fields.

    Returns
    -------
    dict
    """
    if type not in ANNOTATIONS:
        raise ValueError(f"event type must be one of {sorted(ANNOTATIONS)}, got {type!r}.")
    return {"t": float(t), "type": type, **record}
