"""The ward's events as an LSL marker stream (``dreamnet ward --lsl-events``).

Lab tools that record Lab Streaming Layer streams (LabRecorder, ...) then keep the ward's
stages, alerts, interventions and disturbances beside the signals: one string marker per event,
the event's JSON line (with its ``bed``), irregular rate, content type ``Markers``.
"""

from __future__ import annotations

import time

from headset.errors import HeadsetError

#: Seconds a connected recorder is given for the last markers when the ward ends.
CLOSE_GRACE_S = 1.0


class MarkerOutlet:
    """An LSL outlet of string markers.

    Parameters
    ----------
    name : str
        Stream name (also its source id, so a recorder reconnects to it).

    Raises
    ------
    HeadsetError
        If pylsl is not installed or the outlet cannot be created.
    """

    def __init__(self, name: str = "dreamnet-ward"):
        from ..monitor.sources import _quiet_liblsl

        _quiet_liblsl()
        try:
            import pylsl
        except ImportError:
            raise HeadsetError("--lsl-events needs pylsl (pip install pylsl)") from None
        info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, name)
        try:
            self._outlet = pylsl.StreamOutlet(info)
        except Exception as exc:  # liblsl reports its failures as RuntimeError and others
            raise HeadsetError(f"cannot create an LSL outlet: {exc}") from None
        self.name = name
        self.count = 0

    def push(self, line: str) -> None:
        """Publish one event (its JSON line) as a marker."""
        if self._outlet is not None:
            self._outlet.push_sample([line])
            self.count += 1

    def close(self) -> None:
        """Destroy the outlet (idempotent), after a moment for connected recorders.

        The last markers are in flight when the ward ends: a recorder that is connected is
        given :data:`CLOSE_GRACE_S` to receive them.
        """
        if self._outlet is not None and self._outlet.have_consumers():
            time.sleep(CLOSE_GRACE_S)
        self._outlet = None
