"""The monitor's event stream: one JSON object a line (DESIGN section 3).

Every event has ``t`` (seconds since the session start, on the device's sample clock, never the
wall clock) and ``type``; the other fields depend on the type. Events that the monitor also writes
into the recording carry ``onset`` and ``duration`` (seconds) and the ``annotation`` text they were
written as, so a consumer can match the stream to the EDF+ file.

Event types
-----------
``session_start``
    ``source``, ``sfreq``, ``channels``, ``duration_s``, ``missing`` (components not
    available), ``seed``, ``profile``, ``faults``, ``grace_s``, ``sleeper_profile``.
``info``
    ``text``: what the session runs on (sleeper profile or population defaults, evidence
    the detectors lack, the ladder's first step...).
``stage``
    One per 30-s epoch when it is scored: ``epoch``, ``stage`` (``W N1 N2 N3 R ?``), ``code``
    (-1..4), ``confidence``, ``probs`` (``{"W": p, ...}``); annotation ``Scored stage X``.
``arousal``
    ``stage``, ``band``, ``shift_db``; annotation ``Detected arousal`` (onset, duration). The
    fields are :class:`staging.events.ArousalRecord`, the detector's own ``to_event()``.
``nightmare_alert``
    ``alert`` (id), ``risk`` (0..1), ``evidence`` (per marker: value, baseline, unit,
    evidence, weight), ``missing``, ``rising_since``, ``summary``; annotation
    ``Nightmare alert``. The fields after ``alert`` are
    :class:`staging.events.NightmareAlertRecord`.
``intervention``
    A decision of the policy: ``status`` (``episode start``, ``proposed``, ``acknowledged``,
    ``sent``, ``retry``, ``failed``, ``held``, ``cancelled``, ``veto``, ``veto lifted``,
    ``episode over``), ``reason``, and for a cue ``kind``, ``level``, ``duration_s``, ``step``;
    a proposal has its ``deadline`` (end of the grace period), a sent cue its ``outcome`` (the
    device's acknowledgement) and ``attempt``; annotations ``Intervention: <kind>`` and
    ``Intervention failed: <kind>``.
``cue_outcome``
    What followed a cue, judged from the scored stages and the alert: ``woke``, ``settled`` or
    ``no effect`` (``kind``, ``level``, ``sent_t``).
``approve``
    ``by`` ``technician`` (key ``y``) or ``grace period`` (no veto in time).
``veto``
    The technician's veto of the pending cue; annotation ``Intervention vetoed: <kind>``.
``ack``, ``note``, ``pause``, ``resume``
    Technician actions; ``note`` has ``text`` and the annotation ``Note: <text>``.
``lights``
    The technician marked lights ``off`` or ``on`` (``state``; key ``l`` of the live view);
    annotation ``Lights off`` / ``Lights on``.
``gap``
    Samples the device did not deliver (``onset``, ``duration``; annotation ``Gap``).
``lead_off``
    ``channel`` and ``status`` ``start`` or ``end`` (with the duration and the annotation
    ``Lead off: <channel>``).
``reconnect``
    The driver re-opened the link (``reconnects`` so far).
``source``
    An annotation that came with the samples: the simulator's ground truth (``Arousal``,
    ``Nightmare``, ``Awakening``, ``Cue: audio -> settled REM``...), ``Connection lost``, or a
    replayed file's own annotations.
``session_end``
    ``reason`` (``end``, ``duration``, ``quit``, ``interrupt``, ``terminated``, ``hangup``,
    ``error``), ``duration_s``, ``epochs``, ``events`` (counts per type) and ``device``
    (the driver's counters).

Times are on the sample clock, so the same night gives the same stream, byte for byte; ``t``
never decreases along the stream.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import IO, Any

import numpy as np

#: Decimal places of times (``t``, ``onset``, ``duration``): sub-millisecond, below one sample.
TIME_DECIMALS = 4
#: Decimal places of probabilities and other real-valued fields.
VALUE_DECIMALS = 4

_TIME_KEYS = frozenset({"t", "onset", "duration"})


def _plain(value: Any, key: str | None = None) -> Any:
    """Return ``value`` as plain JSON data (numpy scalars/arrays, tuples, NaN -> None)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        if not math.isfinite(v):
            return None
        return round(v, TIME_DECIMALS if key in _TIME_KEYS else VALUE_DECIMALS)
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, Path):
        return str(value)
    return str(value)


def format_event(t: float, type: str, **fields: Any) -> str:
    """Return one event as a JSON line (without the newline).

    Parameters
    ----------
    t : float
        Seconds since the session start (sample clock).
    type : str
        Event type, e.g. ``"stage"``.
    **fields
        The fields of this type; numpy values are converted, non-finite floats become null,
        times are rounded to 0.1 ms and other reals to 4 decimals, so the text is reproducible.

    Returns
    -------
    str
        The JSON object, keys in the order ``t``, ``type``, then ``fields`` as given.
    """
    if not isinstance(type, str) or not type:
        raise ValueError(f"event type must be a non-empty string, got {type!r}")
    record = {"t": _plain(float(t), "t"), "type": type}
    for key, value in fields.items():
        if key in record:
            raise ValueError(f"event field {key!r} is reserved")
        record[key] = _plain(value, key)
    return json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))


class EventWriter:
    """Write events as JSON lines to a file or stdout, flushed after every line.

    Parameters
    ----------
    target : str or path-like or file object or None
        ``"-"`` for stdout, a path (created or truncated), an open text file, or None to write
        nothing (the events are still counted).

    Notes
    -----
    The writer never buffers an event: after :meth:`emit` returns, the line is in the operating
    system's hands, so a consumer tailing the file sees it at once and a killed process loses
    nothing it already reported.
    """

    def __init__(self, target: str | Path | IO[str] | None):
        self._own = False
        self.path: str | None = None
        if target is None:
            self._fh: IO[str] | None = None
        elif isinstance(target, str | Path):
            if str(target) == "-":
                self._fh = sys.stdout
                self.path = "-"
            else:
                self._fh = open(target, "w", encoding="utf-8")  # noqa: SIM115
                self._own = True
                self.path = str(target)
        elif hasattr(target, "write"):
            self._fh = target
        else:
            raise TypeError(
                "events target must be '-', a path, a text file or None, "
                f"got {type(target).__name__}"
            )
        self.count = 0

    def emit(self, t: float, type: str, **fields: Any) -> str:
        """Write one event and return its JSON line (see :func:`format_event`)."""
        line = format_event(t, type, **fields)
        if self._fh is not None:
            self._fh.write(line + "\n")
            self._fh.flush()
        self.count += 1
        return line

    def close(self) -> None:
        """Close the file if this writer opened it (stdout stays open)."""
        if self._own and self._fh is not None:
            self._fh.close()
        self._fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_events(path: str | Path) -> list[dict]:
    """Read a JSONL event file back into a list of dicts (blank lines skipped).

    Parameters
    ----------
    path : str or path-like
        The file written by :class:`EventWriter`.

    Returns
    -------
    list of dict
        One dict per event, in file order.
    """
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {n} is not JSON ({exc.msg})") from None
    return out
