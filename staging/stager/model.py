"""The stored staging model: small MLPs on epoch features plus an HMM over stage transitions.

A model is two files side by side: ``NAME.npz`` (plain float arrays, loaded with
``allow_pickle=False``) and ``NAME.json`` (what it was trained on, feature layout, scores).
Two models are shipped in :data:`MODEL_DIR`: ``dreamnet_stager`` (the default) and
``simulated-only`` (see :mod:`staging.stager.train`).

There is one pair of networks per *modality*, the signals a recording holds
(:data:`~staging.stager.features.MODALITIES`: EEG alone, EEG+EOG, EEG+EMG, EEG+EOG+EMG); each
sees only the inputs of its signals, so a missing signal is never imputed as a value.

* ``online`` MLP: inputs of the current epoch and the two before it (past context only), features
  scaled with :class:`~staging.stager.features.RunningNormalizer`; its output is filtered forward
  through the HMM (no look-ahead).
* ``offline`` MLP: inputs of epochs ``k-2 .. k+2`` scaled with whole-recording statistics; the
  HMM gives posterior marginals by forward-backward.

The MLP posteriors are turned into scaled likelihoods ``(p(s | x) / p(s)) ** gamma`` for the HMM;
``gamma < 1`` compensates for the overlap of neighbouring context windows. They are mixed with
the physiological evidence for wake of :mod:`staging.stager.physiology` (scalp-muscle activity
far above the sleep period's, or a spectrum above 16 Hz flatter than neural activity), which
the simulated sleeper does not teach the networks. The
HMM's output is calibrated by a temperature per mode (``p ** (1 / T)``, renormalised; the stage
chosen does not change) fitted on simulated validation nights under the training's domain
randomisation (:func:`staging.stager.train.recalibrate`), never on a real recording's labels.

Out of distribution: :meth:`StagingModel.distance` measures how far a recording's features lie
from the training recordings (the root mean square, over the amplitude-invariant inputs, of the
recording's median of each input in units of the training population's standard deviation); a
recording farther than ``meta["ood"]["threshold"]`` (the largest distance among the training and
validation recordings, times :data:`OOD_MARGIN`) is flagged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import StagingError
from .features import INPUT_NAMES, MODALITIES, N_INPUTS, NormPrior, modality_inputs
from .physiology import wake_rule_weight, with_wake_rule

#: Directory of the models shipped with the package.
MODEL_DIR = Path(__file__).resolve().parent / "models"
#: Name (file stem) of the default model.
DEFAULT_MODEL = "dreamnet_stager"
#: Name of the model trained on simulated nights alone.
SIMULATED_ONLY_MODEL = "simulated-only"
#: A recording farther than this factor times the largest training distance is out of
#: distribution.
OOD_MARGIN = 1.25
#: Valid epochs needed before a distance is reported.
OOD_MIN_EPOCHS = 20
#: Below this probability of the chosen stage an epoch's stage is uncertain: the monitor shows
#: "low confidence" and the intervention policy does not act on it.
LOW_CONFIDENCE = 0.6
#: Context offsets (epochs) of each mode.
CONTEXT = {"online": (-2, -1, 0), "offline": (-2, -1, 0, 1, 2)}
N_STAGES = 5
FORMAT_VERSION = 2


def stack_context(x: np.ndarray, valid: np.ndarray, offsets: tuple[int, ...]) -> np.ndarray:
    """Concatenate the inputs of neighbouring epochs.

    A neighbour outside the recording or not valid is replaced by the epoch itself.

    Parameters
    ----------
    x : ndarray, shape (n_epochs, n_inputs)
        Per-epoch model inputs.
    valid : ndarray of bool, shape (n_epochs,)
        Epochs with usable data.
    offsets : tuple of int
        Relative epoch indices, e.g. ``(-2, -1, 0)``.

    Returns
    -------
    ndarray, shape (n_epochs, n_inputs * len(offsets))
    """
    n = x.shape[0]
    idx = np.arange(n)
    parts = []
    for o in offsets:
        j = idx + o
        ok = (j >= 0) & (j < n)
        jj = np.clip(j, 0, max(n - 1, 0))
        ok &= valid[jj]
        parts.append(np.where(ok[:, None], x[jj], x))
    return np.concatenate(parts, axis=1)


@dataclass
class MLP:
    """One-hidden-layer perceptron with ReLU and softmax output.

    Attributes
    ----------
    w1 : ndarray, shape (n_in, n_hidden)
    b1 : ndarray, shape (n_hidden,)
    w2 : ndarray, shape (n_hidden, 5)
    b2 : ndarray, shape (5,)
    """

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    @classmethod
    def init(cls, n_in: int, n_hidden: int, rng: np.random.Generator) -> MLP:
        """He-initialised random network."""
        return cls(
            rng.standard_normal((n_in, n_hidden)) * np.sqrt(2.0 / n_in),
            np.zeros(n_hidden),
            rng.standard_normal((n_hidden, N_STAGES)) * np.sqrt(1.0 / n_hidden),
            np.zeros(N_STAGES),
        )

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Output logits, shape (n, 5), for inputs of shape (n, n_in)."""
        h = np.maximum(x @ self.w1 + self.b1, 0.0)
        return h @ self.w2 + self.b2

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Stage probabilities, shape (n, 5), for inputs of shape (n, n_in)."""
        z = self.logits(x)
        z = z - z.max(-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(-1, keepdims=True)


@dataclass
class StagingModel:
    """A complete stager: normalisation prior, online and offline MLPs, HMM.

    Attributes
    ----------
    prior : NormPrior
        Population statistics for feature normalisation.
    nets : dict of str to MLP
        Networks keyed ``"MODE/MODALITY"`` (e.g. ``"online/eeg+eog"``).
    transition : ndarray, shape (5, 5)
        HMM transition probabilities between consecutive epochs (rows sum to 1).
    initial : ndarray, shape (5,)
        Stage distribution of the first epoch.
    class_prior : ndarray, shape (5,)
        Stage frequencies in the training set (divides the MLP posteriors).
    gamma : dict of str to float
        Likelihood exponent per mode.
    temperature : dict of str to float
        Calibration temperature of the HMM's output per mode.
    meta : dict
        JSON metadata (training data, scores, versions).
    """

    prior: NormPrior
    nets: dict[str, MLP]
    transition: np.ndarray
    initial: np.ndarray
    class_prior: np.ndarray
    gamma: dict[str, float] = field(default_factory=lambda: {"online": 1.0, "offline": 1.0})
    temperature: dict[str, float] = field(default_factory=lambda: {"online": 1.0, "offline": 1.0})
    meta: dict = field(default_factory=dict)

    # ---- inference --------------------------------------------------------------------
    def net(self, mode: str, modality: str) -> MLP:
        """Return the network of a mode and modality."""
        return self.nets[f"{mode}/{modality}"]

    def likelihoods(
        self, x: np.ndarray, mode: str, modality: str, flat: np.ndarray | None = None
    ) -> np.ndarray:
        """Scaled HMM emission likelihoods, shape (n, 5), with the wake rule mixed in.

        The network's likelihoods are combined with the physiological evidence for wake of
        :mod:`staging.stager.physiology` (30-45 Hz power far above the sleep period's, or a
        spectrum flatter than neural activity above 16 Hz).

        Parameters
        ----------
        x : ndarray, shape (n, N_INPUTS * len(CONTEXT[mode]))
            Context-stacked inputs (every input column; the modality's are taken).
        mode : {"online", "offline"}
            Which networks.
        modality : str
            One of :data:`~staging.stager.features.MODALITIES`.
        flat : ndarray, shape (n,), optional
            Flat-spectrum evidence of each epoch
            (:func:`~staging.stager.physiology.flat_spectrum_evidence`; None: none).
        """
        cols = context_columns(mode, modality)
        p = self.net(mode, modality).predict_proba(x[:, cols])
        lik = (p / self.class_prior) ** self.gamma[mode]
        lik /= lik.sum(-1, keepdims=True)
        k = CONTEXT[mode].index(0)
        current = x[:, k * N_INPUTS : (k + 1) * N_INPUTS]
        return with_wake_rule(lik, wake_rule_weight(current, flat))

    def calibrate(self, probs: np.ndarray, mode: str) -> np.ndarray:
        """Apply the mode's calibration temperature to stage probabilities (last axis)."""
        t = self.temperature.get(mode, 1.0)
        if t == 1.0:
            return probs
        logp = np.log(np.maximum(probs, 1e-300)) / t
        logp -= logp.max(-1, keepdims=True)
        e = np.exp(logp)
        return e / e.sum(-1, keepdims=True)

    def distance(self, inputs: np.ndarray, valid: np.ndarray, modality: str) -> float:
        """How far a recording's inputs lie from the training recordings (see module doc).

        Parameters
        ----------
        inputs : ndarray, shape (n_epochs, N_INPUTS)
            Normalised per-epoch inputs.
        valid : ndarray of bool, shape (n_epochs,)
            Scorable epochs.
        modality : str
            The recording's modality.

        Returns
        -------
        float
            Root mean square of the per-input medians (NaN with fewer than
            :data:`OOD_MIN_EPOCHS` valid epochs).
        """
        return rms_of_medians(inputs[valid][:, raw_columns(modality)])

    @property
    def ood_threshold(self) -> float:
        """Distance above which a recording is flagged out of distribution (inf: unknown)."""
        return float(self.meta.get("ood", {}).get("threshold", np.inf))

    def forward(
        self, lik: np.ndarray, valid: np.ndarray, alpha0: np.ndarray | None = None
    ) -> np.ndarray:
        """Forward-filtered stage probabilities (causal), shape (n, 5).

        Parameters
        ----------
        lik : ndarray, shape (n, 5)
            Emission likelihoods.
        valid : ndarray of bool, shape (n,)
            Epochs without usable data only propagate the prediction.
        alpha0 : ndarray, shape (5,), optional
            Filtered probabilities of the epoch before the first (None: start of recording).

        Returns
        -------
        ndarray, shape (n, 5)
        """
        out = np.empty_like(lik)
        a = None if alpha0 is None else np.asarray(alpha0, dtype=np.float64)
        for t in range(lik.shape[0]):
            pred = self.initial if a is None else a @ self.transition
            a = pred * lik[t] if valid[t] else pred
            a = a / a.sum()
            out[t] = a
        return out

    def forward_backward(self, lik: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Posterior stage probabilities given the whole recording, shape (n, 5)."""
        n = lik.shape[0]
        e = np.where(valid[:, None], lik, 1.0)
        alpha = np.empty((n, N_STAGES))
        a = self.initial * e[0]
        alpha[0] = a / a.sum()
        for t in range(1, n):
            a = (alpha[t - 1] @ self.transition) * e[t]
            alpha[t] = a / a.sum()
        beta = np.ones((n, N_STAGES))
        for t in range(n - 2, -1, -1):
            b = self.transition @ (e[t + 1] * beta[t + 1])
            beta[t] = b / b.sum()
        post = alpha * beta
        return post / post.sum(-1, keepdims=True)

    def predict(
        self,
        inputs: np.ndarray,
        valid: np.ndarray,
        mode: str,
        modality: str,
        flat: np.ndarray | None = None,
    ) -> np.ndarray:
        """Calibrated stage probabilities of a whole recording from per-epoch inputs.

        Parameters
        ----------
        inputs : ndarray, shape (n_epochs, N_INPUTS)
            Normalised inputs (online- or offline-normalised to match ``mode``).
        valid : ndarray of bool, shape (n_epochs,)
            Scorable epochs.
        mode : {"online", "offline"}
            Causal filtering or forward-backward smoothing.
        modality : str
            The signals the recording holds (:data:`~staging.stager.features.MODALITIES`).
        flat : ndarray, shape (n_epochs,), optional
            Flat-spectrum evidence for wake (see :meth:`likelihoods`).

        Returns
        -------
        ndarray, shape (n_epochs, 5)
        """
        x = stack_context(inputs, valid, CONTEXT[mode])
        lik = self.likelihoods(x, mode, modality, flat)
        if mode == "online":
            post = self.forward(lik, valid)
        else:
            post = self.forward_backward(lik, valid)
        return self.calibrate(post, mode)

    # ---- storage ----------------------------------------------------------------------
    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``path.npz`` and ``path.json`` (the suffix of ``path`` is ignored).

        Returns
        -------
        tuple of Path
            The two files written.
        """
        stem = Path(path).with_suffix("")
        arrays = {
            "prior_median": self.prior.median,
            "prior_scale": self.prior.scale,
            "raw_mean": self.prior.raw_mean,
            "raw_std": self.prior.raw_std,
            "transition": self.transition,
            "initial": self.initial,
            "class_prior": self.class_prior,
        }
        for key, net in self.nets.items():
            for k in ("w1", "b1", "w2", "b2"):
                arrays[f"{key}/{k}"] = getattr(net, k).astype(np.float32)
        stem.parent.mkdir(parents=True, exist_ok=True)
        npz = stem.with_suffix(".npz")
        np.savez_compressed(npz, **arrays)
        return npz, self.save_meta(stem)

    def save_meta(self, path: str | Path) -> Path:
        """Write ``path.json`` alone (the suffix of ``path`` is ignored); return its path.

        Used after a change of the calibration, which leaves the arrays of ``path.npz`` as
        they are.
        """
        stem = Path(path).with_suffix("")
        meta = dict(self.meta)
        meta.update(
            format_version=FORMAT_VERSION,
            input_names=list(INPUT_NAMES),
            context={k: list(v) for k, v in CONTEXT.items()},
            gamma=dict(self.gamma),
            temperature=dict(self.temperature),
            modalities=list(MODALITIES),
            stages=["W", "N1", "N2", "N3", "R"],
        )
        js = stem.with_suffix(".json")
        js.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        return js

    @classmethod
    def load(cls, path: str | Path | None = None) -> StagingModel:
        """Read a model written by :meth:`save` (no pickle).

        Parameters
        ----------
        path : str or Path, optional
            ``NAME``, ``NAME.npz`` or ``NAME.json``; None loads the shipped default model.

        Returns
        -------
        StagingModel
        """
        stem = MODEL_DIR / DEFAULT_MODEL if path is None else _model_stem(path)
        npz, js = stem.with_suffix(".npz"), stem.with_suffix(".json")
        if not npz.is_file() or not js.is_file():
            raise StagingError(f"model not found: {npz} and {js} are both needed")
        try:
            meta = json.loads(js.read_text())
            with np.load(npz, allow_pickle=False) as z:
                a = {k: np.asarray(z[k], dtype=np.float64) for k in z.files}
        except (OSError, ValueError) as exc:
            raise StagingError(f"cannot read model {stem}: {exc}") from None
        if meta.get("format_version") != FORMAT_VERSION or meta.get("input_names") != list(
            INPUT_NAMES
        ):
            raise StagingError(
                f"model {stem} was trained with another feature set or format; retrain it "
                "with `dreamnet train`"
            )
        try:
            nets = {
                f"{mode}/{m}": MLP(*(a[f"{mode}/{m}/{k}"] for k in ("w1", "b1", "w2", "b2")))
                for mode in CONTEXT
                for m in MODALITIES
            }
        except KeyError as exc:
            raise StagingError(f"model {stem} lacks the network {exc.args[0]!r}") from None
        for key, net in nets.items():
            mode, modality = key.split("/")
            if net.w1.shape[0] != context_columns(mode, modality).size:
                raise StagingError(f"model {stem}: {key} network has the wrong input size")
        prior = NormPrior(a["prior_median"], a["prior_scale"], a["raw_mean"], a["raw_std"])
        return cls(
            prior=prior,
            nets=nets,
            transition=a["transition"],
            initial=a["initial"],
            class_prior=a["class_prior"],
            gamma={k: float(v) for k, v in meta["gamma"].items()},
            temperature={k: float(v) for k, v in meta["temperature"].items()},
            meta=meta,
        )


def _model_stem(path: str | Path) -> Path:
    """Return the stem of a shipped model's name (``simulated-only``) or of a path."""
    p = Path(path)
    if p.parent == Path(".") and not p.with_suffix(".npz").exists():
        shipped = MODEL_DIR / p.with_suffix("").name
        if shipped.with_suffix(".npz").is_file():
            return shipped
    return p.with_suffix("")


def context_columns(mode: str, modality: str) -> np.ndarray:
    """Columns of a context-stacked input row that the networks of a modality see."""
    key = (mode, modality)
    if key not in _COLS:
        cols = modality_inputs(modality)
        _COLS[key] = np.concatenate([cols + k * N_INPUTS for k in range(len(CONTEXT[mode]))])
    return _COLS[key]


def raw_columns(modality: str) -> np.ndarray:
    """Return the population-standardised (amplitude-invariant) inputs of a modality.

    These are the columns :meth:`StagingModel.distance` measures.
    """
    return np.array(
        [i for i in modality_inputs(modality) if not INPUT_NAMES[i].startswith(("z_", "has_"))]
    )


def rms_of_medians(rows: np.ndarray) -> float:
    """Root mean square of the column medians of ``rows`` (n_epochs, n_columns).

    NaN with fewer than :data:`OOD_MIN_EPOCHS` rows.
    """
    if len(rows) < OOD_MIN_EPOCHS:
        return float("nan")
    med = np.median(rows, axis=0)
    return float(np.sqrt(np.mean(med.astype(np.float64) ** 2)))


_COLS: dict[tuple[str, str], np.ndarray] = {}
_CACHE: dict[str, StagingModel] = {}


def default_model() -> StagingModel:
    """Return the shipped default model (loaded once per process)."""
    if "default" not in _CACHE:
        _CACHE["default"] = StagingModel.load(None)
    return _CACHE["default"]


def resolve_model(model: StagingModel | str | Path | None) -> StagingModel:
    """Return ``model`` itself, a shipped model by name, the model at a path, or the default.

    Parameters
    ----------
    model : StagingModel or str or Path or None
        None: the default model; ``"simulated-only"``: the shipped model of that name; else a
        path ``NAME``, ``NAME.npz`` or ``NAME.json``.

    Returns
    -------
    StagingModel
    """
    if model is None:
        return default_model()
    if isinstance(model, StagingModel):
        return model
    if isinstance(model, str | Path):
        stem = _model_stem(model)
        if stem.parent != MODEL_DIR:  # a user's file may change: read it each time
            return StagingModel.load(stem)
        if stem.name not in _CACHE:
            _CACHE[stem.name] = StagingModel.load(stem)
        return _CACHE[stem.name]
    raise TypeError(f"model must be a StagingModel, a path or None, got {type(model).__name__}.")
