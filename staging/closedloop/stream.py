"""Streaming helpers shared by the closed-loop detectors (arousal, nightmare).

- :data:`BAD_FLAGS`: the sample flags that make a sample unusable;
- :func:`split_chunk` and :class:`ChunkBatcher`: cut long chunks into pieces, gather short ones
  into blocks;
- :class:`Framer`: overlapping frames of a multichannel stream;
- :class:`StageInput`: the stage input and chunk checks every streaming detector shares.
"""

from __future__ import annotations

import numpy as np

from headset.chunk import Chunk
from headset.stages import EPOCH_S

BAD_FLAGS = np.uint8(1 | 2 | 4 | 8)


def split_chunk(chunk: Chunk, max_samples: int):
    """Yield consecutive pieces of at most ``max_samples`` samples of a chunk.

    Parameters
    ----------
    chunk : Chunk
        The chunk (its annotations go with the first piece).
    max_samples : int
        Longest piece, samples.

    Yields
    ------
    Chunk
    """
    n = chunk.n_samples
    if n <= max_samples:
        yield chunk
        return
    for i in range(0, n, max_samples):
        yield chunk.piece(i, min(n, i + max_samples))


class ChunkBatcher:
    """Gather small chunks into blocks of at least ``min_samples`` (fewer Python calls).

    Live sources deliver chunks of a few dozen samples; the detectors work on half-second
    frames and five-second steps, so they process whole blocks: results do not change, the
    cost per chunk falls to an append.

    Parameters
    ----------
    min_samples : int
        Samples gathered before a block is released.
    """

    def __init__(self, min_samples: int):
        self.min_samples = int(min_samples)
        self._parts: list[Chunk] = []
        self._n = 0

    def add(self, chunk: Chunk) -> Chunk | None:
        """Add a chunk; return the gathered block once it is long enough, else None."""
        self._parts.append(chunk)
        self._n += chunk.n_samples
        if self._n < self.min_samples:
            return None
        return self.take()

    def take(self) -> Chunk | None:
        """Return whatever is gathered as one block (None if nothing)."""
        parts, self._parts, self._n = self._parts, [], 0
        return Chunk.concatenate(parts) if parts else None


class Framer:
    """Cut a multichannel stream into overlapping frames (win samples, hop apart)."""

    def __init__(self, n_ch, win, hop):
        self.win, self.hop = win, hop
        self.buf = np.zeros((n_ch, 0))
        self.fbuf = np.zeros((n_ch, 0), dtype=np.uint8)
        self.start = 0  # absolute index of buf[:, 0]
        self.next_frame = 0  # absolute start index of the next frame

    def push(self, x, flags, first):
        """Append samples ``x`` and ``flags`` (n_ch, n) starting at absolute sample ``first``.

        Returns the complete frames ``(n_ch, n_frames, win)``, their flags and their absolute
        start samples (``None, None, []`` when no frame is complete yet).
        """
        if self.buf.shape[1] == 0:
            self.start = first
        self.buf = np.concatenate([self.buf, x], axis=1)
        self.fbuf = np.concatenate([self.fbuf, flags], axis=1)
        off = self.next_frame - self.start
        n_fr = (self.buf.shape[1] - off - self.win) // self.hop + 1
        if n_fr <= 0:
            return None, None, np.zeros(0, np.int64)
        idx = off + np.arange(n_fr)[:, None] * self.hop + np.arange(self.win)[None, :]
        frames = self.buf[:, idx]  # (n_ch, n_fr, win)
        fflags = self.fbuf[:, idx]
        starts = self.next_frame + np.arange(n_fr) * self.hop
        self.next_frame += n_fr * self.hop
        keep = self.next_frame - self.start
        self.buf = self.buf[:, keep:]
        self.fbuf = self.fbuf[:, keep:]
        self.start += keep
        return frames, fflags, starts


class StageInput:
    """Stage input and chunk checks shared by the streaming detectors.

    A subclass sets ``sfreq``, ``ch_names``, ``_stages`` (a dict, epoch index -> stage code)
    and ``_next`` (the expected first sample of the next chunk, None before the first one).
    """

    def set_stage(self, epoch: int, stage: int) -> None:
        """Give the stage of a 30-s epoch (from the stager or a hypnogram).

        Parameters
        ----------
        epoch : int
            Epoch index (0 = first 30 s of the session).
        stage : int
            Stage code (W=0 ... R=4, -1 unscored).
        """
        stage = int(stage)
        if not -1 <= stage <= 4:
            raise ValueError(f"stage must be -1..4, got {stage}.")
        self._stages[int(epoch)] = stage

    def set_hypnogram(self, hypnogram, first_epoch: int = 0) -> None:
        """Give the stages of many epochs at once (e.g. the true hypnogram in a test).

        Parameters
        ----------
        hypnogram : array_like of int, shape (n_epochs,)
            Stage per epoch.
        first_epoch : int
            Epoch index of ``hypnogram[0]``.
        """
        for i, s in enumerate(np.asarray(hypnogram).ravel()):
            self.set_stage(first_epoch + i, int(s))

    def _check_chunk(self, chunk: Chunk, gap_hint: str = ".") -> None:
        """Raise unless ``chunk`` is a :class:`Chunk` of these channels, consecutive to the last.

        Parameters
        ----------
        chunk : Chunk
            The pushed chunk.
        gap_hint : str
            End of the message raised when the chunk does not start where the last one ended.
        """
        if not isinstance(chunk, Chunk):
            raise TypeError(f"chunk must be a Chunk, got {type(chunk).__name__}.")
        if chunk.ch_names != self.ch_names:
            raise ValueError("chunk channels differ from the detector's channels.")
        if self._next is not None and chunk.first_sample != self._next:
            raise ValueError(
                f"chunk starts at sample {chunk.first_sample}, expected {self._next}{gap_hint}"
            )

    def _stage_chunk(self, chunk: Chunk, stage: int | None) -> None:
        """Give ``stage`` to every epoch ``chunk`` touches that has no stage yet.

        Parameters
        ----------
        chunk : Chunk
            The pushed chunk.
        stage : int or None
            Stage code from the caller; None leaves the stages alone.
        """
        if stage is not None and chunk.n_samples:
            e0 = int(chunk.first_sample / self.sfreq // EPOCH_S)
            e1 = int((chunk.stop_sample - 1) / self.sfreq // EPOCH_S)
            for e in range(e0, e1 + 1):
                self._stages.setdefault(e, int(stage))
