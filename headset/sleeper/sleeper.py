"""The simulated sleeper: a whole night of physiology, streamed chunk by chunk.

Generation runs internally in fixed blocks of ``BLOCK_S`` seconds. Block ``k`` draws all its
randomness from ``SeedSequence(seed, spawn_key=(stream, k))``; coloured noise is cross-faded
between blocks and transients (spindles, eye movements, heartbeats...) that run past a block's
end are carried into the next one (overlap-add), so nothing steps at block borders. ``read(n)``
serves any number of samples from these blocks: the output is bit-identical whatever the chunk
sizes, and the same seed gives the same night bit for bit. Memory stays constant over the night
(one block of signal plus the event log).

The closed loop: :meth:`Sleeper.apply_cue` changes only what is not generated yet (the next
block on, and the plan of the epochs after the current one); see :mod:`.nightmare` for the cue
response model.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np

from dsp.validate import check_option, validate_type

from ..chunk import Annotation, Chunk
from ..faults import FaultConfig
from ..stages import EPOCH_S, N1, N2, N3, STAGE_NAMES, R, W, stage_name
from ._kernels import add_leak
from .accel import Accelerometer
from .architecture import Plan, draw_night, replan
from .artifacts import FaultInjector
from .context import BlockContext
from .eeg import EEGGenerator
from .emg import EMGGenerator
from .eog import EOGGenerator, ocular_gains
from .heart import Heart
from .montage import (
    CHANNELS,
    EEG_ROWS,
    EXG_ROWS,
    N_INTERNAL,
    OCULAR_H,
    OCULAR_V,
    ROW,
    resolve_montage,
)
from .nightmare_episodes import KIND_STRENGTH, Episode, respond
from .profiles import get_profile
from .subject import Subject, draw_subject

BLOCK_S = 10.0  # generation block, s (divides the 30-s epoch)
TAIL_S = 10.0  # longest spill of a transient past its block, s
OVERLAP_S = 1.0  # noise cross-fade, s

# randomness streams (first element of the spawn key)
_S_PLAN, _S_SUBJECT, _S_BLOCK, _S_CUE, _S_FAULT_PLAN, _S_FAULT, _S_BODY = range(7)

#: Seconds for the stage mix to move from the previous epoch's stage to the new one.
_RAMP_S = np.full((5, 5), 8.0)
_RAMP_S[:, W] = 3.0
_RAMP_S[N2, N3] = 20.0
_RAMP_S[N3, N2] = 12.0
_RAMP_S[W, N1] = 10.0

#: Linear leakage between the pure signals (rows: to, columns: from), added once per block:
#: frontal EEG at the EOG electrodes, the heart at the chin and at every mastoid-referenced EEG
#: derivation (less between two scalp sites). The eyes reach every channel through
#: :func:`~headset.sleeper.eog.ocular_gains`.
_LEAK: list[tuple[str, str, float]] = [
    ("EOG E1-M2", "EEG F4-M1", 0.55),
    ("EOG E2-M2", "EEG F4-M1", 0.65),
    ("EMG chin", "ECG", 0.012),
] + [(c, "ECG", 0.004 if "-M" in c else 0.001) for c, t in CHANNELS.items() if t == "eeg"]


#: Body movements per minute of wake (each 1-4 s, with its ``Movement`` annotation).
WAKE_MOVES_PER_MIN = 0.5
_WAKE_MOVES_STREAM = 10_000_000  # seed-sequence keys of the wake movements: one per block
#: Up and about (daytime wake): movements (walking, reaching, gestures) per minute, and talking or
#: chewing bursts per minute (each 2-20 s, adding 1-3x the wake scalp-muscle tone).
DAYTIME_MOVES_PER_MIN = 0.5
DAYTIME_TALKS_PER_MIN = 1.5
_DAYTIME_STREAM = 20_000_000  # seed-sequence keys of the daytime events: one per block


def _ss(seed: int, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=tuple(key))


def _parse_stage(value) -> int:
    if isinstance(value, str):
        if value not in STAGE_NAMES:
            raise ValueError(f"unknown stage {value!r}; stages are {', '.join(STAGE_NAMES)}.")
        return STAGE_NAMES.index(value)
    v = int(value)
    if v not in (W, N1, N2, N3, R):
        raise ValueError(f"stage codes are 0-4 (W, N1, N2, N3, R), got {value!r}.")
    return v


def _check_seed(seed) -> int:
    """Return ``seed`` as an int, or raise TypeError/ValueError if it is not a usable seed."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} instead.")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}.")
    return int(seed)


def _check_sfreq(sfreq) -> float:
    """Return ``sfreq`` (Hz) as a float, or raise if outside 100-2048 Hz or not block-aligned."""
    if isinstance(sfreq, bool) or not isinstance(sfreq, int | float | np.number):
        raise TypeError(f"sfreq must be a number, got {type(sfreq).__name__} instead.")
    sfreq = float(sfreq)
    n_block = sfreq * BLOCK_S
    if not (100.0 <= sfreq <= 2048.0) or abs(n_block - round(n_block)) > 1e-9:
        raise ValueError(
            f"sfreq must be within 100-2048 Hz with sfreq * {BLOCK_S:g} an integer, got {sfreq}."
        )
    return sfreq


def _forced_stages(hypnogram) -> np.ndarray | None:
    """Stage codes of a forced hypnogram, shape (n_epochs,), or None when none is given."""
    if hypnogram is None:
        return None
    if isinstance(hypnogram, str):
        raise TypeError("hypnogram must be a sequence of stages, not a str.")
    forced = np.array([_parse_stage(v) for v in hypnogram], dtype=np.int8)
    if forced.size == 0:
        raise ValueError("hypnogram must hold at least one epoch.")
    return forced


class Sleeper:
    """A simulated person sleeping one night, read as a stream of :class:`~headset.chunk.Chunk`.

    Parameters
    ----------
    profile : str
        ``"healthy"``, ``"child"``, ``"insomnia"`` or ``"nightmare-prone"`` (see ``PROFILES``).
    seed : int
        Seed of everything (subject, night plan, signals, faults); non-negative.
    duration_s : float or None
        Length of the night, s. Default 8 h, or the length of ``hypnogram`` when one is given.
    sfreq : float
        Sampling rate, Hz (``sfreq * 10`` must be an integer; 100-2048 Hz).
    faults : FaultConfig or None
        Signal faults to simulate (packet faults are ignored here: the device layer applies
        them). None means no faults.
    montage : sequence of str or None
        Channels to output, a subset of ``CHANNELS`` (default ``DEFAULT_MONTAGE``). Each channel's
        signal is the same whatever the montage.
    hypnogram : sequence of int or str, optional
        Force the stage of each 30-s epoch (codes 0-4 or ``"W"``, ``"N1"``...) instead of
        drawing the night's architecture; useful for tests and fixtures.
    nightmares : sequence of (onset_s, duration_s), optional
        Force nightmare episodes at these times (in addition to the planned ones).
    daytime : (int, int)
        Epochs at the start and at the end of the recording during which the subject is up and
        about, not in bed (a recording that holds the day around the night, as Sleep-EDF's
        ambulatory ones do): eyes open throughout (no alpha), free-viewing saccades, more scalp
        and chin muscle with talking and chewing bursts, frequent movement artifacts. These
        epochs must be wake. Default ``(0, 0)``: the whole recording is in bed.
    keep_history : bool
        Keep every annotation delivered and every R peak generated, for :attr:`events` and
        :attr:`beat_samples` (about 100 KiB per simulated hour). False keeps neither, so the
        sleeper's memory stays constant over any night (a ward's beds, whose annotations go
        out in the chunks); the signals are the same either way.

    Attributes
    ----------
    ch_names : tuple of str
        Output channel names.
    ch_types : tuple of str
        MNE channel types.
    sfreq : float
        Sampling rate, Hz.
    n_samples : int
        Samples in the night.
    subject : Subject
        The person drawn from the seed.
    profile : Profile
        The profile.
    n_epochs : int
        Number of 30-s epochs (the last one may be shorter).

    Notes
    -----
    Ground-truth annotations (texts of DESIGN 3) are delivered once, in the chunk that holds
    their *release sample*, and collected in :attr:`events`: ``Sleep stage X`` (30 s), ``Arousal``
    (3-15 s; also those caused by cues), ``Movement``, ``Electrode pop: <ch>``, ``Lead off: <ch>``
    and ``Saturation: <ch>`` are released at their onset with their full duration;
    ``Nightmare`` (onset to end) when the episode ends; ``Awakening`` (a run of W after sleep
    onset, with its length) when sleep resumes or the night ends; ``Cue: <kind> -> <outcome>`` at
    the position where the cue was applied.

    Examples
    --------
    >>> s = Sleeper(profile="nightmare-prone", seed=7, duration_s=600.0)
    >>> while not s.done:
    ...     chunk = s.read(256)
    >>> s.hypnogram.shape
    (20,)
    """

    def __init__(
        self,
        profile: str = "healthy",
        seed: int = 0,
        duration_s: float | None = None,
        sfreq: float = 256.0,
        faults: FaultConfig | None = None,
        montage: Sequence[str] | None = None,
        hypnogram: Sequence[int | str] | None = None,
        nightmares: Sequence[tuple[float, float]] | None = None,
        daytime: tuple[int, int] = (0, 0),
        keep_history: bool = True,
    ):
        self.profile = get_profile(profile)
        self.seed = _check_seed(seed)
        self.sfreq = _check_sfreq(sfreq)
        if faults is None:
            faults = FaultConfig()
        validate_type("faults", faults, FaultConfig)
        self.faults = faults
        self.ch_names = resolve_montage(montage)
        self.ch_types = tuple(CHANNELS[c] for c in self.ch_names)
        self._rows = np.array([ROW[c] for c in self.ch_names])
        # internal rows up to the last output channel: the faults and the leakage touch no other
        self._n_rows = int(self._rows.max()) + 1
        self._rows_in_order = bool(np.array_equal(self._rows, np.arange(self._rows.size)))
        self._plan_night(hypnogram, duration_s)
        self._daytime = self._daytime_intervals(daytime)
        validate_type("keep_history", keep_history, bool)
        self._keep_history = keep_history
        self.subject: Subject = draw_subject(_ss(self.seed, _S_SUBJECT), self.profile)
        self._build_generators()
        self._reset_generation(nightmares)

    def _plan_night(self, hypnogram, duration_s) -> None:
        """Set the night's length (samples, epochs, block sizes) and its stage plan."""
        sfreq = self.sfreq
        forced = _forced_stages(hypnogram)
        if duration_s is None:
            duration_s = forced.size * EPOCH_S if forced is not None else 8 * 3600.0
        if isinstance(duration_s, bool) or not isinstance(duration_s, int | float | np.number):
            raise TypeError(f"duration_s must be a number, got {type(duration_s).__name__}.")
        if not (math.isfinite(duration_s) and duration_s > 0):
            raise ValueError(f"duration_s must be a positive number of seconds, got {duration_s}.")
        self.n_samples = int(round(duration_s * sfreq))
        if self.n_samples < 1:
            raise ValueError(f"duration_s={duration_s} gives no sample at {sfreq} Hz.")
        self._epoch_len = int(round(EPOCH_S * sfreq))
        self._block = int(round(BLOCK_S * sfreq))
        self._tail = int(round(TAIL_S * sfreq))
        self._overlap = int(round(OVERLAP_S * sfreq))
        self.n_epochs = -(-self.n_samples // self._epoch_len)
        if forced is not None:
            if forced.size < self.n_epochs:
                raise ValueError(
                    f"hypnogram has {forced.size} epochs but duration_s={duration_s} needs "
                    f"{self.n_epochs}."
                )
            forced = forced[: self.n_epochs]
            self._plan = Plan(
                stages=forced.copy(),
                cycle=np.zeros(self.n_epochs, dtype=np.int16),
                nightmare=np.zeros(self.n_epochs),
            )
        else:
            rng = np.random.default_rng(_ss(self.seed, _S_PLAN))
            self._plan = draw_night(self.profile, rng, self.n_epochs)

    def _build_generators(self) -> None:
        """Create the signal generators, the fault injector and the leakage operations."""
        s, fs, B, ov = self.subject, self.sfreq, self._block, self._overlap
        # the leakage as (to, from, gain) row operations into the output channels: a sparse
        # matrix, and small dense matrix products can cost more than they compute
        # (multi-threaded BLAS)
        leak = [(ROW[to], ROW[frm], g) for to, frm, g in _LEAK]
        for name, row in ROW.items():
            for src, g in zip((OCULAR_H, OCULAR_V), ocular_gains(name)):
                if g:
                    leak.append((row, src, g))
        outputs = set(self._rows.tolist())
        leak = [op for op in leak if op[0] in outputs]
        self._leak_to = np.array([op[0] for op in leak], dtype=np.int64)
        self._leak_from = np.array([op[1] for op in leak], dtype=np.int64)
        self._leak_gain = np.array([op[2] for op in leak])
        # only the EEG derivations that are output or leak into an output are rendered (the
        # randomness drawn is the same, so each channel's signal is the same whatever the montage)
        needed = outputs | set(self._leak_from.tolist())
        eeg_rows = [r for r in EEG_ROWS if r in needed]
        self._eeg = EEGGenerator(s, self.profile, fs, B, ov, eeg_rows)
        self._eog = EOGGenerator(s, fs, B, ov)
        self._emg = EMGGenerator(s, fs, B, ov)
        self._heart = Heart(s, fs)
        self._acc = Accelerometer(fs, B, np.random.default_rng(_ss(self.seed, _S_BODY)))
        exg_rows = [ROW[c] for c in self.ch_names if CHANNELS[c] != "misc"]
        self._faults = FaultInjector(
            self.faults,
            fs,
            self.n_samples,
            np.random.default_rng(_ss(self.seed, _S_FAULT_PLAN)),
            exg_rows,
        )

    def _reset_generation(self, nightmares) -> None:
        """Set the generation state to the start of the night and announce planned faults."""
        fs = self.sfreq
        self._k = 0  # next block index
        self._gen_end = 0  # samples generated
        # the block's internal signals, then the spill of its transients into the next block;
        # kept from block to block (see _next_buffer)
        self._buf = np.zeros((N_INTERNAL, self._block + self._tail))
        self._blocks: deque[tuple[int, np.ndarray, np.ndarray]] = deque()
        self._pos = 0
        self._true = np.full(self.n_epochs, -1, dtype=np.int8)
        self._pending: list[tuple[int, int, Annotation]] = []  # (release, seq, annotation)
        self._seq = 0
        self._events: list[Annotation] = []
        self._beats: list[np.ndarray] = []
        self._beats_released = 0
        self._arousals: list[tuple[int, int, bool]] = []  # (onset, stop, confusion)
        self._last_arousal_end = -(10**12)
        self._movements: list[tuple[int, int]] = []
        self._eyes: list[tuple[int, int]] = []
        self._talks: list[tuple[int, int, float]] = []  # (onset, stop, muscle gain)
        self._episodes: list[Episode] = []
        self._episode_ends_seen: set[int] = set()
        self._forced_nm = sorted(
            (int(round(o * fs)), int(round((o + d) * fs))) for o, d in (nightmares or ())
        )
        self._asleep = False
        self._wake_start: int | None = None
        self._n_cues = 0
        for release, ann in self._faults.planned_annotations():
            self._announce(release, ann)

    # ------------------------------------------------------------------ public API
    @property
    def position(self) -> int:
        """Index of the next sample :meth:`read` returns."""
        return self._pos

    @property
    def done(self) -> bool:
        """True once the whole night has been read."""
        return self._pos >= self.n_samples

    @property
    def hypnogram(self) -> np.ndarray:
        """True stage per 30-s epoch, shape (n_epochs,), int8.

        Epochs already generated hold what happened; later ones hold the current plan (cues may
        still change it).
        """
        out = self._plan.stages.copy()
        done = self._true >= 0
        out[done] = self._true[done]
        return out

    def stage_at(self, sample: int) -> int:
        """Return the true stage at a sample index.

        Parameters
        ----------
        sample : int
            Sample index, ``0 <= sample < n_samples`` (for a sample not generated yet, the
            planned stage).

        Returns
        -------
        int
            Stage code (W=0, N1=1, N2=2, N3=3, R=4).
        """
        if isinstance(sample, bool) or not isinstance(sample, int | np.integer):
            raise TypeError(f"sample must be an int, got {type(sample).__name__} instead.")
        if not 0 <= sample < self.n_samples:
            raise ValueError(f"sample must be within 0-{self.n_samples - 1}, got {sample}.")
        return int(self.hypnogram[int(sample) // self._epoch_len])

    def _history(self, name: str) -> None:
        if not self._keep_history:
            raise RuntimeError(f"Sleeper.{name} needs keep_history=True (this sleeper keeps none).")

    @property
    def events(self) -> list[Annotation]:
        """Every ground-truth annotation delivered so far (also in ``Chunk.annotations``)."""
        self._history("events")
        return list(self._events)

    @property
    def beat_samples(self) -> np.ndarray:
        """Sample indices of the true R peaks read so far, int64, shape (n_beats,)."""
        self._history("beat_samples")
        if not self._beats:
            return np.zeros(0, dtype=np.int64)
        allb = np.concatenate(self._beats)
        return allb[allb < self._pos]

    def read(self, n: int) -> Chunk:
        """Return the next ``n`` samples (fewer at the end of the night, 0 once done).

        Parameters
        ----------
        n : int
            Number of samples wanted (>= 0).

        Returns
        -------
        Chunk
            Data in µV (accelerometer in milli-g), shape (n_channels, n_read), with flags and the
            ground-truth annotations released in this stretch.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer):
            raise TypeError(f"n must be an int, got {type(n).__name__} instead.")
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}.")
        n = int(min(n, self.n_samples - self._pos))
        start = self._pos
        stop = start + n
        while self._gen_end < stop:
            self._generate_block()
        data = np.empty((len(self._rows), n))
        flags = np.zeros((len(self._rows), n), dtype=np.uint8)
        filled = 0
        while filled < n:
            b0, bdata, bflags = self._blocks[0]
            a = start + filled - b0
            take = min(bdata.shape[1] - a, n - filled)
            data[:, filled : filled + take] = bdata[:, a : a + take]
            flags[:, filled : filled + take] = bflags[:, a : a + take]
            filled += take
            if a + take >= bdata.shape[1]:
                self._blocks.popleft()
        self._pos = stop
        released = [p for p in self._pending if p[0] < stop]
        if released:
            self._pending = [p for p in self._pending if p[0] >= stop]
            released.sort(key=lambda p: (p[0], p[1]))
            anns = tuple(p[2] for p in released)
            if self._keep_history:
                self._events.extend(anns)
        else:
            anns = ()
        return Chunk(
            data=data,
            first_sample=start,
            sfreq=self.sfreq,
            ch_names=self.ch_names,
            ch_types=self.ch_types,
            flags=flags,
            annotations=anns,
        )

    def apply_cue(self, kind: str, level: float) -> str:
        """Deliver a cue to the sleeper (closed loop) and return what it did.

        The cue acts at the current position; its effect starts with the next generated block
        and the plan of every epoch not generated yet is redrawn (model in
        :mod:`headset.sleeper.nightmare_episodes`). A ``Cue: <kind> -> <outcome>`` annotation is
        added.

        Parameters
        ----------
        kind : str
            ``"audio"``, ``"vibration"`` or ``"wake"``.
        level : float
            Intensity, 0-1.

        Returns
        -------
        str
            The outcome: ``"woke"``, ``"settled REM"``, ``"settled N2"``,
            ``"confusion arousal"``, ``"arousal"``, ``"no effect"``, ``"already awake"`` or
            ``"night over"``.
        """
        check_option("kind", kind, KIND_STRENGTH)
        if isinstance(level, bool) or not isinstance(level, int | float | np.number):
            raise TypeError(f"level must be a number, got {type(level).__name__} instead.")
        level = float(level)
        if not 0.0 <= level <= 1.0:
            raise ValueError(f"level must be within 0-1, got {level}.")
        pos = self._pos
        self._n_cues += 1
        if pos >= self.n_samples:
            return "night over"
        rng = np.random.default_rng(_ss(self.seed, _S_CUE, self._n_cues, pos))
        at = max(pos - 1, 0)
        stage = self.stage_at(at)
        episode = next((e for e in self._episodes if e.onset <= at < e.end), None)
        resp = respond(kind, level, stage, episode, at, rng)
        b = self._gen_end
        fs = self.sfreq
        if b < self.n_samples:
            if resp.arousal_s > 0:
                stop = b + int(resp.arousal_s * fs)
                self._add_arousal(b, stop, resp.confusion)
                if resp.confusion:
                    self._movements.append((b, b + int(3 * fs)))
            if episode is not None:
                if resp.settle:
                    episode.settle_level = float(episode.intensity(np.array([b]), fs)[0])
                    episode.settle_at = b
                    episode.end = b + int(3 * 20.0 * fs)
                elif resp.outcome == "woke":
                    episode.end = max(b, episode.onset + 1)
            if resp.prefix is not None:
                e_next = -(-b // self._epoch_len)
                left = self.n_epochs - e_next
                if left > 0:
                    e_cur = min(max(e_next - 1, 0), self.n_epochs - 1)
                    cycle = int(self._plan.cycle[e_cur]) + int(resp.next_cycle)
                    new = replan(
                        self.profile, rng, left, resp.prefix, cycle, resp.phase, resp.rem_epochs
                    )
                    self._plan.stages[e_next:] = new.stages
                    self._plan.cycle[e_next:] = new.cycle
                    self._plan.nightmare[e_next:] = new.nightmare
        self._announce(pos, Annotation(pos / fs, 0.0, f"Cue: {kind} -> {resp.outcome}"))
        return resp.outcome

    # ------------------------------------------------------------------ internals
    def _announce(self, release: int, ann: Annotation) -> None:
        release = min(max(release, self._pos), self.n_samples - 1)
        self._pending.append((release, self._seq, ann))
        self._seq += 1

    def _add_arousal(self, onset: int, stop: int, confusion: bool = False) -> None:
        stop = min(stop, self.n_samples)
        self._arousals.append((onset, stop, confusion))
        self._last_arousal_end = max(self._last_arousal_end, stop)
        label = "Arousal"
        self._announce(onset, Annotation(onset / self.sfreq, (stop - onset) / self.sfreq, label))

    def _mix_weights(self, start: int, n: int) -> tuple[np.ndarray, tuple[int, ...]]:
        """Stage mix per sample of the block at ``start``, shape (n, 5), and its stages.

        A block lies within one epoch (``BLOCK_S`` divides ``EPOCH_S``): the mix ramps from the
        previous epoch's stage to this one's over the ramp time of the pair. The stages are
        those whose column may be non-zero (every other column is zero).
        """
        el = self._epoch_len
        ep = start // el
        hyp = self.hypnogram
        cur, prev = int(hyp[ep]), int(hyp[max(ep - 1, 0)])
        off, ramp = start - ep * el, _RAMP_S[prev, cur]
        w = np.zeros((n, 5))
        if off / self.sfreq / ramp >= 1.0:
            # the ramp is over (most blocks): u = 1 everywhere, as 0.5 - 0.5 cos(pi) is 1
            w[:, cur] = 1.0
            return w, (cur,)
        u = np.clip(np.arange(off, off + n) / self.sfreq / ramp, 0.0, 1.0)
        u = 0.5 - 0.5 * np.cos(np.pi * u)
        w[:, prev] += 1.0 - u
        w[:, cur] += u
        return w, (prev, cur)

    @staticmethod
    def _envelope(
        intervals, idx: np.ndarray, attack: float, release: float, fs: float
    ) -> np.ndarray:
        env = np.zeros(idx.size)
        for on, off, *_ in intervals:
            if off + release * fs <= idx[0] or on > idx[-1]:
                continue
            up = np.clip((idx - on) / max(attack * fs, 1.0), 0.0, 1.0)
            down = np.clip(1.0 - (idx - off) / max(release * fs, 1.0), 0.0, 1.0)
            env = np.maximum(env, np.minimum(up, down) * (idx >= on))
        return env

    def _daytime_intervals(self, daytime) -> list[tuple[int, int]]:
        """Check ``daytime`` (epochs up before and after the night); return sample intervals."""
        if isinstance(daytime, str) or len(daytime) != 2:
            raise ValueError(f"daytime must be two epoch counts (before, after), got {daytime!r}.")
        for v in daytime:
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
                raise ValueError(f"daytime epoch counts must be non-negative ints, got {daytime}.")
        pre, post = int(daytime[0]), int(daytime[1])
        if pre + post > self.n_epochs:
            raise ValueError(
                f"daytime={daytime} holds more than the recording's {self.n_epochs} epochs."
            )
        up = np.r_[0:pre, self.n_epochs - post : self.n_epochs]
        if np.any(self._plan.stages[up] != W):
            raise ValueError("daytime epochs must be wake (W) in the hypnogram.")
        el = self._epoch_len
        out = [(0, pre * el)] if pre else []
        if post:
            out.append(((self.n_epochs - post) * el, self.n_samples + 1))
        return out

    def _plan_daytime(self, start: int, B: int, k: int) -> list[tuple[int, int]]:
        """Talking/chewing bursts (kept in ``_talks``) and movements of a daytime block."""
        fs = self.sfreq
        drng = np.random.default_rng(_ss(self.seed, _S_BODY, _DAYTIME_STREAM + k))
        for on in np.sort(drng.integers(0, B, drng.poisson(DAYTIME_TALKS_PER_MIN * BLOCK_S / 60))):
            on = start + int(on)
            stop = on + int(drng.uniform(2.0, 20.0) * fs)
            self._talks.append((on, stop, float(drng.uniform(1.0, 3.0))))
        moves = []
        for on in np.sort(drng.integers(0, B, drng.poisson(DAYTIME_MOVES_PER_MIN * BLOCK_S / 60))):
            on = start + int(on)
            moves.append((on, on + int(drng.uniform(1.0, 4.0) * fs)))
        return moves

    def _generate_block(self) -> None:
        k, B, fs, el = self._k, self._block, self.sfreq, self._epoch_len
        start = k * B
        rng = np.random.default_rng(_ss(self.seed, _S_BLOCK, k))
        e = start // el
        hyp_e = min(e, self.n_epochs - 1)
        if start % el == 0 or self._true[hyp_e] < 0:
            self._begin_epoch(hyp_e, start)
        stage = int(self._true[hyp_e])
        idx = np.arange(start, start + B)

        # nightmares that begin in this block
        self._start_nightmares(start, B)
        self._plan_arousals_and_eyes(start, stage, int(self._true[max(hyp_e - 1, 0)]), rng)
        # fault transients and movements (a stream's generator is made only when it draws)
        frng = brng = None
        moves, pops, wake_moves = [], [], []
        if self._faults.per_block:
            frng = np.random.default_rng(_ss(self.seed, _S_FAULT, k))
            moves, pops = self._faults.plan_block(start, B, frng)
        daytime = self._envelope(self._daytime, idx, 5.0, 5.0, fs)
        up = daytime.any()
        if stage == W or up:
            brng = np.random.default_rng(_ss(self.seed, _S_BODY, _WAKE_MOVES_STREAM + k))
            wake_moves = self._plan_wake_moves(start, stage, brng)
            if up:
                wake_moves += self._plan_daytime(start, B, k)
        self._movements.extend(moves + wake_moves)

        ctx = self._block_context(start, stage, idx, daytime, rng)
        buf = self._next_buffer()
        self._eeg.generate(ctx, buf)
        self._eog.generate(ctx, buf)
        self._emg.generate(ctx, buf)
        peaks, resp = self._heart.generate(ctx, buf)
        self._acc.generate(ctx, buf, resp)
        if frng is not None:
            for release, ann in self._faults.add_transients(buf, start, moves, pops, frng):
                self._announce(release, ann)
        if brng is not None:
            wake = self._faults.add_transients(buf, start, wake_moves, [], brng, EXG_ROWS)
            for release, ann in wake:
                self._announce(release, ann)
        out, flags = self._output_block(buf, start)
        if self._keep_history:
            self._beats.append(peaks[peaks < self.n_samples])
        self._blocks.append((start, out, flags))
        self._end_nightmares(start, B)
        self._prune(start)
        self._k += 1
        self._gen_end = min(start + B, self.n_samples)
        if self._gen_end >= self.n_samples and self._wake_start is not None:
            self._close_awakening(self.n_samples - 1, self.n_samples)

    def _plan_arousals_and_eyes(self, start: int, stage: int, prev_stage: int, rng) -> None:
        """Draw the spontaneous arousals and the eyes-open spells of the block at ``start``."""
        B, fs = self._block, self.sfreq
        # spontaneous arousals (AASM: after >= 10 s of stable sleep)
        if stage != W and prev_stage != W:
            count = rng.poisson(self.profile.arousals_per_h * BLOCK_S / 3600.0)
            for on in np.sort(rng.integers(0, B, count)):
                on = start + int(on)
                if on - self._last_arousal_end >= 10 * fs:
                    dur = float(np.clip(3.0 + rng.exponential(4.0), 3.0, 15.0))
                    self._add_arousal(on, on + int(dur * fs))
        # eyes open in wake (about half of it: a recording at home starts before lights-off)
        if stage == W:
            for on in np.sort(rng.integers(0, B, rng.poisson(1.8 * BLOCK_S / 60.0))):
                self._eyes.append((start + int(on), start + int(on) + int(rng.uniform(4, 30) * fs)))

    def _plan_wake_moves(self, start: int, stage: int, brng) -> list[tuple[int, int]]:
        """Body movements while awake in the block at ``start``, as (onset, stop) samples.

        Turning over, scratching, reaching: large slow swings on every exG lead (whatever the
        montage), a chin-EMG burst and the accelerometer.
        """
        B, fs = self._block, self.sfreq
        wake_moves = []
        if stage == W:
            for on in np.sort(brng.integers(0, B, brng.poisson(WAKE_MOVES_PER_MIN * BLOCK_S / 60))):
                on = start + int(on)
                wake_moves.append((on, on + int(brng.uniform(1.0, 4.0) * fs)))
        return wake_moves

    def _block_context(self, start: int, stage: int, idx, daytime, rng) -> BlockContext:
        """Envelopes of the planned events over the block's samples ``idx``, as a context."""
        B, fs = self._block, self.sfreq
        arousal = self._envelope(self._arousals, idx, 0.5, 1.5, fs)
        confusion = self._envelope([a for a in self._arousals if a[2]], idx, 0.5, 1.5, fs)
        movement = self._envelope(self._movements, idx, 0.2, 0.5, fs)
        eyes = self._envelope(self._eyes, idx, 0.2, 0.2, fs)
        nightmare = np.zeros(B)
        for ep in self._episodes:
            nightmare = np.maximum(nightmare, ep.intensity(idx, fs))
        w, mix_stages = self._mix_weights(start, B)
        eyes = np.maximum(eyes, daytime) * w[:, W]
        talk = np.zeros(B)
        for on, off, gain in self._talks:
            talk = np.maximum(talk, gain * self._envelope([(on, off)], idx, 0.3, 0.5, fs))
        t_h = start / fs / 3600.0
        return BlockContext(
            index=self._k,
            start=start,
            n=B,
            tail=self._tail,
            sfreq=fs,
            stage=stage,
            w=w,
            mix_stages=mix_stages,
            arousal=arousal,
            nightmare=nightmare,
            eyes_open=eyes,
            movement=movement,
            confusion=confusion,
            daytime=daytime,
            talk=talk,
            homeostasis=0.78 + 0.22 * math.exp(-t_h / 3.0),
            rng=rng,
        )

    def _output_block(self, buf: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
        """Mix the internal sources into the output channels and apply the faults.

        Returns the data of the output channels ``(n_channels, n_block)`` and its flags (the
        generators' tail stays in ``buf`` for the next block).
        """
        m, B = self._n_rows, self._block
        out = buf[:m, :B].copy()
        add_leak(buf, B, self._leak_to, self._leak_from, self._leak_gain, out)
        flags = np.zeros((m, B), dtype=np.uint8)
        self._faults.apply(out, flags, start)
        if self._rows_in_order:  # the output channels are the first rows (default montage)
            return out, flags
        return out[self._rows], flags[self._rows]

    def _next_buffer(self) -> np.ndarray:
        """Return the internal buffer set up for the next block: zeros plus the last tail.

        Its first ``tail`` samples become ``0.0 + tail`` (the tail of the block before, as
        an addition into zeros gives it), the rest zeros; ``tail <= block``, so the two
        stretches do not overlap.
        """
        buf, B, tail = self._buf, self._block, self._tail
        np.add(buf[:, B : B + tail], 0.0, out=buf[:, :tail])
        buf[:, tail:] = 0.0
        return buf

    def _begin_epoch(self, e: int, start: int) -> None:
        stage = int(self._plan.stages[e])
        self._true[e] = stage
        fs, el = self.sfreq, self._epoch_len
        dur = min(el, self.n_samples - e * el) / fs
        self._announce(start, Annotation(e * el / fs, dur, f"Sleep stage {stage_name(stage)}"))
        if stage != W:
            if self._wake_start is not None:
                self._close_awakening(start, start)
            self._asleep = True
        elif self._asleep and self._wake_start is None:
            self._wake_start = start
            rng = np.random.default_rng(_ss(self.seed, _S_BODY, e + 1))
            if rng.random() < 0.6:
                on = start + int(rng.uniform(0, 5) * fs)
                self._movements.append((on, on + int(rng.uniform(1.5, 5) * fs)))

    def _close_awakening(self, release: int, stop: int) -> None:
        onset = self._wake_start
        self._wake_start = None
        fs = self.sfreq
        self._announce(release, Annotation(onset / fs, (stop - onset) / fs, "Awakening"))

    def _start_nightmares(self, start: int, B: int) -> None:
        el, fs = self._epoch_len, self.sfreq
        e0 = start // el
        cands = []
        for e in range(e0, min(e0 + 8, self.n_epochs)):
            d = self._plan.nightmare[e]
            if d > 0:
                cands.append((e * el - int(round(d * fs)), e * el))
        cands += [c for c in self._forced_nm if c[0] < start + B and c[1] > start]
        for on, end in cands:
            if end in self._episode_ends_seen or on >= start + B or end <= start:
                continue
            self._episode_ends_seen.add(end)
            self._episodes.append(Episode(onset=max(on, start), end=end))

    def _end_nightmares(self, start: int, B: int) -> None:
        fs = self.sfreq
        for ep in self._episodes:
            if not ep.announced and ep.end < start + B:
                ann = Annotation(ep.onset / fs, (ep.end - ep.onset) / fs, "Nightmare")
                self._announce(max(ep.end, start), ann)
                ep.announced = True
        horizon = start - int(300 * fs)  # keep fading episodes visible for a while
        self._episodes = [ep for ep in self._episodes if ep.end > horizon]

    def _prune(self, start: int) -> None:
        horizon = start - int(60 * self.sfreq)  # > the longest release ramp
        self._arousals = [a for a in self._arousals if a[1] > horizon]
        self._movements = [m for m in self._movements if m[1] > horizon]
        self._eyes = [m for m in self._eyes if m[1] > horizon]
        self._talks = [m for m in self._talks if m[1] > horizon]
