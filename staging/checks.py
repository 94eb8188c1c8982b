"""Checks at the staging layer's boundaries, written once (the same message everywhere).

- :func:`check_rate`: is a sampling rate enough for a consumer;
- :func:`check_stream`: can this stream feed this consumer, and is a chunk still from the stream
  the consumer started with? Every streaming consumer (online stager, arousal and nightmare
  detectors, heart rate, the monitor's pipeline) calls it, with its rate floor from
  :data:`MIN_SFREQ`, and gets a :class:`~staging.errors.StagingError` naming it.
"""

from __future__ import annotations

import numpy as np

from dsp.ecg import MIN_SFREQ as _ECG_MIN_SFREQ
from dsp.validate import validate_type
from headset.chunk import StreamInfo

from .errors import StagingError
from .stager.features import MIN_SFREQ as _STAGING_MIN_SFREQ

#: Lowest sampling rate each streaming consumer works at, Hz: its highest band must stay
#: below 0.45 x the rate (staging: spindles and EMG power; arousal: beta to 30 Hz; nightmare
#: and heart rate: the QRS complex and the chin EMG). The monitor runs whatever of its
#: components the stream can feed, so its own floor is the lowest of theirs.
MIN_SFREQ = {
    "monitor": _STAGING_MIN_SFREQ,
    "online staging": _STAGING_MIN_SFREQ,
    "arousal detection": 64.0,
    "nightmare detection": 100.0,
    "heart rate": _ECG_MIN_SFREQ,
}


def check_rate(consumer: str, sfreq: float) -> float:
    """Raise unless a stream at ``sfreq`` Hz can feed ``consumer`` (its floor in :data:`MIN_SFREQ`).

    Parameters
    ----------
    consumer : str
        A key of :data:`MIN_SFREQ`, named in the message.
    sfreq : float
        Sampling rate of the stream, Hz.

    Returns
    -------
    float
        ``sfreq``.

    Raises
    ------
    StagingError
        The rate is not finite or below the floor.
    """
    if consumer not in MIN_SFREQ:
        raise ValueError(f"unknown stream consumer {consumer!r}; known: {sorted(MIN_SFREQ)}.")
    floor = MIN_SFREQ[consumer]
    if not np.isfinite(sfreq) or sfreq < floor:
        raise StagingError(
            f"{consumer}: the stream's {sfreq:g} Hz is below the {floor:g} Hz it needs"
        )
    return float(sfreq)


def check_stream(
    consumer: str, received: StreamInfo, expected: StreamInfo | None = None
) -> StreamInfo:
    """Raise unless the stream ``received`` can feed ``consumer`` (and is ``expected``).

    Parameters
    ----------
    consumer : str
        A key of :data:`MIN_SFREQ`, named in the message.
    received : StreamInfo
        The description of the stream that came (e.g. ``chunk.info``).
    expected : StreamInfo or None
        The stream the consumer started with; None for the first chunk (then only the rate
        floor is checked).

    Returns
    -------
    StreamInfo
        ``received``.

    Raises
    ------
    StagingError
        The rate is below the consumer's floor, or differs from ``expected``'s, or the
        channels differ from ``expected``'s.
    """
    validate_type("stream", received, StreamInfo)
    if consumer not in MIN_SFREQ:
        raise ValueError(f"unknown stream consumer {consumer!r}; known: {sorted(MIN_SFREQ)}.")
    floor = MIN_SFREQ[consumer]
    if expected is None:
        if received.sfreq < floor:
            raise StagingError(
                f"{consumer}: the stream's {received.sfreq:g} Hz is below the {floor:g} Hz it needs"
            )
        return received
    if received.sfreq != expected.sfreq:
        raise StagingError(
            f"{consumer}: the sampling rate changed mid-stream, expected "
            f"{expected.sfreq:g} Hz, got {received.sfreq:g} Hz"
        )
    if received != expected:
        raise StagingError(
            f"{consumer}: the channels changed mid-stream, expected {list(expected.ch_names)}, "
            f"got {list(received.ch_names)}"
        )
    return received
