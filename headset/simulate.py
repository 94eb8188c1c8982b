"""A simulated night written to EDF+ with its ground truth (DESIGN 3; ``dreamnet simulate``).

The simulated sleeper (:class:`headset.sleeper.Sleeper`) produces the night chunk by chunk and
the recorder (:class:`headset.recorder.Recorder`, the project's one EDF writer) writes it
incrementally: every signal in physical units (µV for EEG/EOG/EMG/ECG, milli-g for the
accelerometer), every ground-truth event as an EDF+ annotation. The file's start date and time
are fixed, so the same arguments give the same bytes.

The module is light to import (the CLI's parser reads :data:`REDUCED_MONTAGE`); the sleeper,
the recorder and the device link are imported when a night is simulated.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .recorder import Recorder
    from .sleeper import Sleeper

#: The reduced montage (``dreamnet simulate --montage reduced``, the fixtures' 8-h night): one
#: EEG, one EOG and the chin EMG.
REDUCED_MONTAGE = ("EEG C4-M1", "EOG E1-M2", "EMG chin")


def simulate_to_edf(
    out,
    *,
    duration_s: float,
    seed: int = 0,
    profile: str = "healthy",
    faults=None,
    montage=None,
    sfreq: float = 256.0,
    chunk_s: float = 30.0,
    progress=None,
    recorder_kwargs: dict | None = None,
    sleeper_kwargs: dict | None = None,
) -> dict:
    """Simulate a night and record it to an EDF+ file.

    Parameters
    ----------
    out : str or path-like
        Output file.
    duration_s : float
        Length of the night, seconds.
    seed : int
        Seed of the night.
    profile : str
        Sleeper profile.
    faults : FaultConfig or None
        Simulated faults: signal faults act in the sleeper; packet faults send the night
        through the simulated device link and driver (gaps are flagged and annotated).
    montage : sequence of str or None
        Channels; None is the sleeper's default montage.
    sfreq : float
        Sampling rate, Hz.
    chunk_s : float
        Seconds of signal per step (the output does not depend on it).
    progress : callable or None
        Called as ``progress(seconds_done)`` after each step.
    recorder_kwargs, sleeper_kwargs : dict or None
        Extra arguments of :class:`headset.recorder.Recorder` and
        :class:`headset.sleeper.Sleeper` (e.g. a forced stage sequence for fixtures).

    Returns
    -------
    dict
        ``ch_names``, ``sfreq``, ``duration_s``, ``hypnogram`` (np.int8, one stage per 30-s
        epoch), ``events`` (Counter of annotation texts, stages excluded), ``annotations``
        (list of every Annotation written), ``stats`` (the recorder's).
    """
    from .faults import FaultConfig
    from .recorder import Recorder
    from .sleeper import Sleeper

    faults = FaultConfig() if faults is None else faults
    sleeper = Sleeper(
        profile=profile,
        seed=seed,
        duration_s=duration_s,
        sfreq=sfreq,
        faults=faults,
        montage=montage,
        **(sleeper_kwargs or {}),
    )
    kwargs = {**_recorder_defaults(profile, seed), **(recorder_kwargs or {})}
    step = max(1, int(round(chunk_s * sleeper.sfreq)))
    annotations = []
    with Recorder(out, sleeper.ch_names, sleeper.ch_types, sleeper.sfreq, **kwargs) as rec:
        for chunk in _chunks(sleeper, step, faults, seed):
            annotations.extend(chunk.annotations)
            rec.write(chunk)
            if progress is not None:
                progress(chunk.stop_sample / sleeper.sfreq)
    return _summary(sleeper, rec, annotations)


def _recorder_defaults(profile: str, seed: int) -> dict:
    """Return the recorder's arguments for a simulated night (patient fields, no flag notes)."""
    return {
        "patient_code": f"SIM-{profile}-seed{seed}",
        "patient_name": "Simulated_sleeper",
        "equipment": "dreamnet_simulator",
        # The sleeper's ground truth already names lead-off episodes; flags add nothing.
        "annotate_flags": False,
    }


def _summary(sleeper: Sleeper, rec: Recorder, annotations: list) -> dict:
    """Return what :func:`simulate_to_edf` returns, from the finished recording."""
    events = Counter(
        a.description for a in annotations if not a.description.startswith("Sleep stage ")
    )
    return {
        "ch_names": tuple(sleeper.ch_names),
        "sfreq": float(sleeper.sfreq),
        "duration_s": rec.duration,
        "hypnogram": sleeper.hypnogram,
        "events": events,
        "annotations": annotations,
        "stats": rec.stats,
    }


def _chunks(sleeper, step: int, faults, seed: int):
    """Chunks of the night: straight from the sleeper, or through the simulated device link.

    With packet faults on, the sleeper feeds the simulated device (firmware, packets, the
    in-process transport) and the driver decodes the stream, so lost and corrupt packets and
    disconnects become ``FLAG_GAP`` samples with ``"Gap"`` / ``"Connection lost"``
    annotations, exactly as in a live session.
    """
    if not faults.any_packet_fault:
        while not sleeper.done:
            chunk = sleeper.read(step)
            if chunk.n_samples == 0:
                return
            yield chunk
        return
    from .driver import Headset

    with Headset.simulated(source=sleeper, seed=seed, faults=faults, speed="max") as hs:
        while (chunk := hs.read(step)) is not None:
            if chunk.n_samples or chunk.annotations:
                yield chunk
