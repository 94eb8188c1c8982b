"""Causal, epoch-by-epoch sleep staging of a live stream of Chunks.

:class:`OnlineStager` buffers the selected channels of incoming :class:`~headset.chunk.Chunk`
objects and, as soon as the last sample of a 30-s epoch has arrived, computes the epoch's
features (from that epoch only), scales them with the statistics of the epochs seen so far
(:class:`~staging.stager.features.RunningNormalizer`; burn-in of
:data:`~staging.stager.features.BURN_IN_EPOCHS` epochs blended with population priors), runs the
online MLP of the selected signals (EEG, EOG, EMG) on the current and two previous epochs, mixes
in the physiological wake rule (:mod:`staging.stager.physiology`, its 30-45 Hz floor kept from
the epochs so far) and filters the result forward through the HMM; the probabilities are
calibrated. Nothing
after the epoch is used, so the estimate for epoch ``k`` is the same whatever follows, and the
same whatever the chunking. Epochs with more than half of their EEG samples flagged (gap,
lead-off, saturation, corrupt) or NaN, or with a flat EEG, are emitted as ``?`` (stage -1) with
the HMM's prediction as probabilities and confidence 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp.validate import validate_type
from headset.chunk import Chunk, StreamInfo
from headset.stages import EPOCH_S, UNSCORED, stage_name

from ..channels import ChannelSelection, select_channels
from ..checks import check_rate, check_stream
from ..errors import StagingError
from .features import RunningNormalizer, epoch_features, epoch_length, modality_name
from .model import CONTEXT, StagingModel, raw_columns, resolve_model, rms_of_medians
from .physiology import HighBandFloor, flat_spectrum_evidence


@dataclass(frozen=True)
class StageEstimate:
    """The stager's conclusion about one 30-s epoch.

    Attributes
    ----------
    epoch : int
        Epoch index since the session start.
    onset_s : float
        Epoch start in seconds since the session start.
    stage : int
        0-4 (W, N1, N2, N3, R) or -1 (``?``: no usable data).
    probs : ndarray, shape (5,)
        Probabilities of W, N1, N2, N3, R.
    confidence : float
        Probability of the chosen stage (0 for ``?``).
    """

    epoch: int
    onset_s: float
    stage: int
    probs: np.ndarray
    confidence: float

    @property
    def stage_name(self) -> str:
        """``W``, ``N1``, ``N2``, ``N3``, ``R`` or ``?``."""
        return stage_name(self.stage)


class OnlineStager:
    """Stage a live recording epoch by epoch, without look-ahead.

    Parameters
    ----------
    model : StagingModel or str or Path, optional
        The model (None: the shipped default).
    ch_names, ch_types : sequence of str, optional
        Channel layout of the source; None takes it from the first chunk.
    sfreq : float, optional
        Sampling rate in Hz; None takes it from the first chunk.
    eeg, eog, emg : str, optional
        Channel names to use (see :func:`staging.channels.select_channels`); None chooses by name.

    Examples
    --------
    >>> stager = OnlineStager()  # doctest: +SKIP
    >>> for chunk in source:  # doctest: +SKIP
    ...     for est in stager.push(chunk):
    ...         print(est.epoch, est.stage_name, est.confidence)
    """

    def __init__(
        self,
        model: StagingModel | str | None = None,
        ch_names=None,
        ch_types=None,
        sfreq: float | None = None,
        eeg: str | None = None,
        eog: str | None = None,
        emg: str | None = None,
    ):
        self.model = resolve_model(model)
        self._want = (eeg, eog, emg)
        self._offsets = CONTEXT["online"]
        self.selection: ChannelSelection | None = None
        self.sfreq: float | None = None
        self.info: StreamInfo | None = None  # the stream, from the first chunk
        if ch_names is not None:
            self._setup(tuple(ch_names), None if ch_types is None else tuple(ch_types), sfreq)
        elif sfreq is not None:
            self._check_sfreq(sfreq)
            self.sfreq = float(sfreq)
        self.reset()

    @classmethod
    def for_stream(cls, info: StreamInfo, **kwargs) -> OnlineStager:
        """Return a stager for the stream ``info`` (``kwargs``: the other options)."""
        return cls(ch_names=info.ch_names, ch_types=info.ch_types, sfreq=info.sfreq, **kwargs)

    # ---- set-up -------------------------------------------------------------------------
    @staticmethod
    def _check_sfreq(sfreq: float) -> None:
        check_rate("online staging", sfreq)

    def _first_chunk(self, info: StreamInfo) -> None:
        """Take the stream from the first chunk (it must be the one given at construction)."""
        check_stream("online staging", info)
        names = self._names if self.selection is not None else info.ch_names
        sfreq = self.sfreq if self.sfreq is not None else info.sfreq
        if (names, sfreq) != (info.ch_names, info.sfreq):
            raise StagingError(
                f"online staging: expected {sfreq:g} Hz and channels {list(names)}, the first "
                f"chunk has {info.sfreq:g} Hz and {list(info.ch_names)}"
            )
        if self.selection is None:
            self._setup(info.ch_names, info.ch_types, info.sfreq)
        self.sfreq, self.info = info.sfreq, info

    def _setup(self, names, types, sfreq) -> None:
        if sfreq is not None:
            self._check_sfreq(sfreq)
            self.sfreq = float(sfreq)
        eeg, eog, emg = self._want
        self.selection = select_channels(names, types, eeg=eeg, eog=eog, emg=emg)
        self._names = names
        self._rows = np.array(self.selection.indices, dtype=np.intp)
        sel = self.selection
        self.modality = modality_name(bool(sel.eog), sel.emg is not None)
        self._raw_cols = raw_columns(self.modality)

    def reset(self) -> None:
        """Start a new recording (forget buffers, normalisation history and HMM state)."""
        self._norm = RunningNormalizer(self.model.prior)
        self._floor = HighBandFloor()
        self._epoch = 0
        self._pos = 0  # next expected device sample index
        self._buf = None
        self._bad = None
        self._buf_start = 0  # sample index of _buf[:, 0]
        self._end_k = 0  # one past the last sample of the current epoch (set on first chunk)
        self._fill = 0
        self._ctx: list[tuple[np.ndarray, bool]] = []
        self._alpha: np.ndarray | None = None
        # the distance's inputs of the valid epochs, float32 (about 100 KiB for 8 h)
        self._seen: list[np.ndarray] = []

    @property
    def distance(self) -> float:
        """Distance of the epochs so far from the training recordings (NaN before enough).

        See :meth:`staging.stager.model.StagingModel.distance`.
        """
        return rms_of_medians(np.array(self._seen)) if self._seen else float("nan")

    @property
    def out_of_distribution(self) -> bool:
        """True once the stream lies farther from the training data than the model knows."""
        return bool(self.distance > self.model.ood_threshold)

    @property
    def epochs_emitted(self) -> int:
        """Number of epochs estimated so far."""
        return self._epoch

    def _epoch_start(self, k: int) -> int:
        return int(round(k * EPOCH_S * self.sfreq))

    # ---- streaming ----------------------------------------------------------------------
    def push(self, chunk: Chunk) -> list[StageEstimate]:
        """Feed the next chunk; return the estimates of the epochs it completed.

        Parameters
        ----------
        chunk : Chunk
            Consecutive samples of the source. A jump forward in ``first_sample`` is a gap
            (treated as bad samples); samples already seen are ignored.

        Returns
        -------
        list of StageEstimate
            One per epoch whose last sample is in this chunk (usually zero or one).
        """
        validate_type("chunk", chunk, Chunk)
        if self.info is None:
            self._first_chunk(chunk.info)
        else:
            check_stream("online staging", chunk.info, self.info)
        if self._buf is None:
            n_per = epoch_length(self.sfreq)
            self._n_per = n_per
            self._buf = np.zeros((self._rows.size, 2 * n_per + 2))
            self._bad = np.ones((self._rows.size, 2 * n_per + 2), dtype=bool)
            self._pos = 0
            self._end_k = n_per
        start = chunk.first_sample
        n = chunk.data.shape[1]
        pos = self._pos
        if start == pos and pos >= self._buf_start and pos + n < self._end_k:
            # common case: the next samples, inside the current epoch (no copy but the buffer's)
            j0 = pos - self._buf_start
            self._buf[:, j0 : j0 + n] = chunk.data[self._rows]
            np.not_equal(chunk.flags[self._rows], 0, out=self._bad[:, j0 : j0 + n])
            self._pos = pos + n
            return []
        data = chunk.data[self._rows]
        flags = chunk.flags[self._rows] != 0
        if start + chunk.n_samples <= self._pos:
            return []
        if start < self._pos:  # overlap: drop what we already have
            cut = self._pos - start
            data, flags, start = data[:, cut:], flags[:, cut:], self._pos
        out: list[StageEstimate] = []
        if start > self._pos:  # gap: bad samples
            out += self._write(None, None, start - self._pos)
        out += self._write(data, flags, data.shape[1])
        return out

    def _write(self, data, flags, n: int) -> list[StageEstimate]:
        out = []
        i = 0
        while i < n:
            if self._pos < self._buf_start:  # rounding left samples between two epochs
                skip = min(self._buf_start - self._pos, n - i)
                self._pos += skip
                i += skip
                continue
            end_k = self._epoch_start(self._epoch) + self._n_per  # one past the epoch's end
            room = end_k - self._pos
            take = min(room, n - i)
            j0 = self._pos - self._buf_start
            if data is None:
                self._buf[:, j0 : j0 + take] = 0.0
                self._bad[:, j0 : j0 + take] = True
            else:
                self._buf[:, j0 : j0 + take] = data[:, i : i + take]
                self._bad[:, j0 : j0 + take] = flags[:, i : i + take]
            self._pos += take
            i += take
            if self._pos == end_k:
                out.append(self._finish_epoch())
        return out

    def _emg(self, seg: np.ndarray, n_eog: int) -> np.ndarray | None:
        """EMG row of an epoch buffer (bipolar difference, or OR of bad masks), shape (1, n)."""
        sel = self.selection
        if sel.emg is None:
            return None
        row = seg[1 + n_eog]
        if sel.emg_ref is not None:
            ref = seg[2 + n_eog]
            row = (row | ref) if row.dtype == bool else row - ref
        return row[None]

    def _finish_epoch(self) -> StageEstimate:
        k = self._epoch
        s0 = self._epoch_start(k) - self._buf_start
        seg = self._buf[:, s0 : s0 + self._n_per]
        bad = self._bad[:, s0 : s0 + self._n_per]
        sel = self.selection
        n_eog = len(sel.eog)
        f = epoch_features(
            seg[0][None],
            self.sfreq,
            eog=seg[1 : 1 + n_eog][None] if n_eog else None,
            emg=self._emg(seg, n_eog),
            eeg_bad=bad[0][None],
            eog_bad=bad[1 : 1 + n_eog][None] if n_eog else None,
            emg_bad=self._emg(bad, n_eog),
        )
        x = self._norm.push(f)[0]
        valid = bool(f.valid[0])
        # context window: the two previous epochs' inputs (the current one if missing/invalid)
        parts = []
        for o in self._offsets:
            if o == 0:
                parts.append(x)
                continue
            j = len(self._ctx) + o
            if j >= 0 and self._ctx[j][1]:
                parts.append(self._ctx[j][0])
            else:
                parts.append(x)
        self._ctx.append((x, valid))
        if valid:
            self._seen.append(x[self._raw_cols].astype(np.float32))
        if len(self._ctx) > -min(self._offsets):
            self._ctx.pop(0)
        m = self.model
        pred = m.initial if self._alpha is None else self._alpha @ m.transition
        if valid:
            flat = flat_spectrum_evidence(f.values, self._floor.push(f.values, f.valid))
            lik = m.likelihoods(np.concatenate(parts)[None], "online", self.modality, flat)[0]
            a = pred * lik
        else:
            a = pred
        a = a / a.sum()
        self._alpha = a
        # move to the next epoch: keep samples from its start on
        self._epoch += 1
        nxt = self._epoch_start(self._epoch)
        shift = nxt - self._buf_start
        keep = self._pos - nxt
        if keep > 0:
            self._buf[:, :keep] = self._buf[:, shift : shift + keep]
            self._bad[:, :keep] = self._bad[:, shift : shift + keep]
        self._buf_start = nxt
        self._end_k = nxt + self._n_per
        stage = int(np.argmax(a)) if valid else UNSCORED
        probs = m.calibrate(a, "online")
        return StageEstimate(
            epoch=k,
            onset_s=self._epoch_start(k) / self.sfreq,
            stage=stage,
            probs=probs,
            confidence=float(probs[stage]) if valid else 0.0,
        )
