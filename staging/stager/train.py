"""Train the staging models on simulated nights and on scored EDF/BDF recordings.

``dreamnet train`` builds both shipped models in one command:

* ``simulated-only``: simulated nights alone. It measures what the project can do without real
  labels (the realism of the simulator, the robustness of the features) and is the model
  validated on the real Sleep-EDF night.
* ``dreamnet_stager`` (the default): the same simulated nights plus the scored recordings given
  with ``--edf``, weighted so that the real epochs are not drowned: the real recordings together
  carry :data:`REAL_WEIGHT_SHARE` of the training weight (each real epoch counts as many
  simulated epochs as needed for that share). Without ``--edf`` it equals ``simulated-only``.

Simulated nights come from the project's sleeper (``headset.sleeper.Sleeper``), every profile,
a fresh subject per seed, with domain randomisation so that no nuisance of montage, amplifier or
recording protocol is learnt as a stage cue (see :func:`simulate_recording`): EEG derivation
(any EEG lead the sleeper renders, or a bipolar difference of two), in half the nights the eyes'
dipole leaking into that lead at 0.1-0.6 of the EOG difference (as at Fpz-Cz, where blinks and
saccades give real wake a slow-wave share like sleep's), amplitude gain 0.3-3x per
signal, amplifier high-pass 0.1-0.7 Hz and low-pass 25-45 Hz, mains 50/60 Hz, white noise,
clipping, 128/100/64 Hz, EOG as two channels, one, or one bipolar derivation, and long wake
before lights-off and after the final awakening (recordings of up to a day, as in Sleep-EDF)
in a share of the nights, spent up and about (the sleeper's daytime wake: eyes open, looking
around, talking and chewing, moving). Each recording is also used in random crops (5 min to
2 h) so that the normalisation never relies on a whole night being present.

There is one pair of networks (online, offline) per modality (EEG, EEG+EOG, EEG+EMG,
EEG+EOG+EMG); every recording trains the networks of each modality its signals allow.
Validation nights (separate seeds) choose the HMM likelihood exponent, the calibration
temperature of each mode (lowest negative log-likelihood of the final probabilities) and the
out-of-distribution threshold, and give the scores stored in the model's JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headset.stages import EPOCH_S

from ..errors import StagingError
from .evaluate import cohen_kappa, stage_labels
from .features import (
    FEATURE_VERSION,
    INV_COLUMNS,
    MODALITIES,
    N_COLUMNS,
    EpochFeatures,
    NormPrior,
    continuous_features,
    deferred_columns,
    modality_of,
    normalize_offline,
    normalize_online,
    robust_stats,
)
from .model import (
    CONTEXT,
    DEFAULT_MODEL,
    MLP,
    N_STAGES,
    OOD_MARGIN,
    SIMULATED_ONLY_MODEL,
    StagingModel,
    context_columns,
    stack_context,
)

PROFILE_NAMES = ("healthy", "child", "insomnia", "nightmare-prone")
#: Seeds of the default training set are SEED_BASE + i; validation uses VAL_SEED_BASE + i.
#: Benchmarks must use seeds outside both ranges.
SEED_BASE = 1000
VAL_SEED_BASE = 5000
#: Bump when :func:`simulate_recording` changes what it produces (invalidates caches).
AUGMENT_VERSION = 5
#: Share of the training weight carried by the scored (real) recordings in the default model.
REAL_WEIGHT_SHARE = 0.5
#: Rate (Hz) the training nights are simulated at (everything the features use, to 47 Hz).
SIM_RATE = 128.0
_EOG = ("EOG E1-M2", "EOG E2-M2")
_EMG = "EMG chin"


@dataclass
class Recording:
    """Raw epoch features and true stages of one training recording."""

    features: EpochFeatures
    labels: np.ndarray
    name: str
    info: dict = field(default_factory=dict)

    @property
    def simulated(self) -> bool:
        """True for a night of the simulated sleeper."""
        return self.name.startswith("sim:")


# --------------------------------------------------------------------------------------
# Simulated nights
# --------------------------------------------------------------------------------------


def _resample(x: np.ndarray, sfreq: float, new: float) -> np.ndarray:
    from fractions import Fraction

    from scipy.signal import resample_poly

    fr = Fraction(new / sfreq).limit_denominator(1000)
    return resample_poly(x, fr.numerator, fr.denominator, axis=-1)


def eeg_leads() -> tuple[str, ...]:
    """Return every EEG lead the simulated sleeper renders."""
    from headset.sleeper.montage import CHANNELS

    return tuple(n for n, t in CHANNELS.items() if t == "eeg")


def _draw_derivation(rng: np.random.Generator) -> tuple[str, ...]:
    """One referential lead, or two whose difference is a bipolar derivation (30 %)."""
    leads = eeg_leads()
    if len(leads) > 1 and rng.random() < 0.3:
        a, b = rng.choice(len(leads), size=2, replace=False)
        return (leads[a], leads[b])
    return (leads[int(rng.integers(len(leads)))],)


def _amplifier(x: np.ndarray, sfreq: float, rng: np.random.Generator, info: dict, key: str):
    """Random amplifier: gain, high-pass, low-pass, mains, noise (per signal group)."""
    from scipy.signal import butter, sosfilt

    gain = float(np.exp(rng.uniform(np.log(0.3), np.log(3.0))))
    x = x * gain
    hp = float(rng.uniform(0.1, 0.7)) if rng.random() < 0.7 else 0.0
    if hp:
        x = sosfilt(butter(1, hp, "highpass", fs=sfreq, output="sos"), x, axis=-1)
    lp = float(rng.uniform(25.0, 45.0)) if rng.random() < 0.3 else 0.0
    if lp and lp < 0.45 * sfreq:
        x = sosfilt(butter(4, lp, "lowpass", fs=sfreq, output="sos"), x, axis=-1)
    mains = 0.0
    if rng.random() < 0.2:
        mains = float(rng.uniform(1.0, 10.0))
        f0 = 50.0 if rng.random() < 0.5 else 60.0
        t = np.arange(x.shape[-1]) / sfreq
        x = x + mains * np.sin(2 * np.pi * f0 * t + rng.uniform(0, 2 * np.pi))
    x = x + rng.uniform(0, 3) * rng.standard_normal(x.shape)
    info[key] = {"gain": round(gain, 3), "highpass": round(hp, 2), "lowpass": round(lp, 1)}
    info[key]["mains_uv"] = round(mains, 1)
    return x


def simulate_recording(
    seed: int,
    profile: str,
    duration_s: float = 8 * 3600.0,
    augment: bool = True,
) -> Recording:
    """Simulate one night and compute its features, with random acquisition differences.

    Parameters
    ----------
    seed : int
        Sleeper seed (the subject and night); the augmentation draws from it too.
    profile : str
        Sleeper profile.
    duration_s : float
        Night length in seconds (before any wake added around it).
    augment : bool
        Domain randomisation (module docstring); False gives EEG C4-M1, both EOG channels and
        the chin EMG at 128 Hz as simulated.

    Returns
    -------
    Recording
        Every signal the features use: EEG, EOG (two channels, one, or a bipolar one) and EMG.
    """
    from headset.sleeper import Sleeper

    rng = np.random.default_rng([seed, 7331])
    info: dict = {"seed": seed, "profile": profile}
    leads = ("EEG C4-M1",) if not augment else _draw_derivation(rng)
    montage = (*leads, *_EOG, _EMG)
    s = Sleeper(profile=profile, seed=seed, duration_s=duration_s, sfreq=SIM_RATE, montage=montage)
    if augment and rng.random() < 0.4:
        # the hours of wake a clinical or home recording holds around the night
        pre = int(rng.uniform(0.25, 8.0) * 120)
        post = int(rng.uniform(0.25, 6.0) * 120)
        hyp = np.concatenate([np.zeros(pre, np.int8), s.hypnogram, np.zeros(post, np.int8)])
        s = Sleeper(
            profile=profile,
            seed=seed,
            sfreq=SIM_RATE,
            montage=montage,
            hypnogram=hyp,
            daytime=(pre, post),  # up and about, not in bed: eyes open, talking, moving
        )
        info["wake_added_h"] = [round(pre / 120, 2), round(post / 120, 2)]
    chunk = s.read(s.n_samples)
    data = chunk.data.astype(np.float64)
    labels = np.asarray(s.hypnogram, dtype=np.int8)
    k = len(leads)
    eeg = data[0] - data[1] if k == 2 else data[0]
    eog = data[k : k + 2]
    emg = data[k + 2]
    sfreq, eog_kind = SIM_RATE, "E1,E2"
    if augment:
        eeg, eog, emg, sfreq, eog_kind = _acquire(eeg, eog, emg, rng, info)
    info.update(eeg="-".join(leads), eog=eog_kind, sfreq=sfreq)
    feats = continuous_features(eeg, sfreq, eog=eog, emg=emg)
    n = min(feats.n_epochs, labels.size)
    return Recording(feats.take(slice(0, n)), labels[:n], f"sim:{profile}:{seed}", info)


def _acquire(eeg, eog, emg, rng, info: dict):
    """Randomise how the simulated signals were acquired (module docstring).

    Parameters
    ----------
    eeg : ndarray, shape (n_samples,)
        The EEG derivation in microvolts at ``SIM_RATE``.
    eog : ndarray, shape (2, n_samples)
        E1-M2 and E2-M2 in microvolts.
    emg : ndarray, shape (n_samples,)
        Chin EMG in microvolts.
    rng : numpy.random.Generator
        The recording's augmentation stream (drawn in a fixed order).
    info : dict
        What was drawn, filled in.

    Returns
    -------
    eeg, eog, emg : ndarray
        The signals as recorded, at ``sfreq``; ``eog`` has 1 or 2 rows.
    sfreq : float
        Sampling rate in Hz.
    eog_kind : str
        ``"E1,E2"``, ``"E1"`` or ``"E1-E2"``.
    """
    sfreq, eog_kind = SIM_RATE, "E1,E2"
    if rng.random() < 0.5:
        # the eyes' dipole leaking into the EEG lead, as at Fpz-Cz, where blinks, saccades
        # and slow eye movements give real wake a slow-wave share like sleep's
        g = rng.uniform(0.1, 0.6)
        eeg = eeg + g * (eog[0] - eog[1]) / 2
        info["ocular_leak"] = round(float(g), 3)
    r = rng.random()
    if r < 0.3:
        eog, eog_kind = eog[:1], "E1"
    elif r < 0.6:
        eog, eog_kind = (eog[0] - eog[1])[None], "E1-E2"
    if rng.random() < 0.5:  # people with few or small eye movements, electrode placement
        common, diff = (eog.sum(0) / len(eog)), eog - eog.sum(0) / len(eog)
        a = rng.uniform(0.2, 1.2)
        eog = (common + a * diff) if len(eog) == 2 else eog * a
        info["eye_movement_gain"] = round(float(a), 3)
    eeg = _amplifier(eeg, sfreq, rng, info, "eeg_amp")
    eog = _amplifier(eog, sfreq, rng, info, "eog_amp")
    emg = _amplifier(emg, sfreq, rng, info, "emg_amp")
    if rng.random() < 0.1:
        lim = rng.uniform(50, 150) * info["eeg_amp"]["gain"]
        eeg = np.clip(eeg, -lim, lim)
        info["clip_uv"] = round(float(lim), 1)
    sfreq = float(rng.choice([128.0, 100.0, 64.0], p=[0.45, 0.45, 0.1]))
    if sfreq != SIM_RATE:
        eeg, eog, emg = (_resample(v, SIM_RATE, sfreq) for v in (eeg, eog, emg))
    return eeg, eog, emg, sfreq, eog_kind


# --------------------------------------------------------------------------------------
# Labelled EDF+ recordings
# --------------------------------------------------------------------------------------


def _find_hypnogram(path: Path) -> Path | None:
    """Sleep-EDF pairs ``SC4001E0-PSG.edf`` with ``SC4001EC-Hypnogram.edf``."""
    stem = path.name.split("-")[0]
    for cand in sorted(path.parent.glob("*Hypnogram*.edf")):
        if cand.name[: max(len(stem) - 2, 1)] == stem[: max(len(stem) - 2, 1)]:
            return cand
    return None


def _sleeper_digest(with_versions: bool = True) -> str:
    """Hash of the sleeper's code (and the feature/augmentation versions: the cache key)."""
    import headset.sleeper as sl

    h = hashlib.sha256()
    for f in sorted(Path(sl.__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    if with_versions:
        h.update(f"{FEATURE_VERSION}:{AUGMENT_VERSION}".encode())
    return h.hexdigest()[:12]


def _cached_simulation(seed: int, profile: str, duration_s: float, cache: str | None) -> Recording:
    """:func:`simulate_recording`, reusing features stored in ``cache`` (a directory)."""
    import json

    if not cache:
        return simulate_recording(seed, profile, duration_s)
    d = Path(cache)
    d.mkdir(parents=True, exist_ok=True)
    f = d / f"{profile}-{seed}-{int(duration_s)}-{_sleeper_digest()}.npz"
    if f.is_file():
        with np.load(f, allow_pickle=False) as z:
            feats = EpochFeatures(
                z["values"], z["valid"], z["sw_p2p"], z["sw_dur"], z["em_slopes"], z["indicators"]
            )
            return Recording(feats, z["labels"], str(z["name"]), json.loads(str(z["info"])))
    rec = simulate_recording(seed, profile, duration_s)
    ft = rec.features
    np.savez(
        f,
        values=ft.values,
        valid=ft.valid,
        sw_p2p=ft.sw_p2p,
        sw_dur=ft.sw_dur,
        em_slopes=ft.em_slopes,
        indicators=ft.indicators,
        labels=rec.labels,
        name=np.str_(rec.name),
        info=np.str_(json.dumps(rec.info)),
    )
    return rec


def edf_recording(
    path: str | Path,
    hypnogram: str | Path | None = None,
    eeg: str | None = None,
    eog: str | None = None,
    emg: str | None = None,
    trim_wake_min: float = 30.0,
) -> Recording:
    """Load a scored recording for training.

    Parameters
    ----------
    path : str or Path
        EDF/BDF with the signals.
    hypnogram : str or Path, optional
        EDF+ with the stage annotations; None looks for a Sleep-EDF ``*Hypnogram.edf`` next to
        ``path`` and falls back to the annotations of ``path`` itself.
    eeg, eog, emg : str, optional
        Channel names (None: chosen by name as in ``dreamnet score``).
    trim_wake_min : float
        Keep only this many minutes of wake before the first and after the last sleep epoch
        (Sleep-EDF recordings hold many hours of wake); negative keeps everything.

    Returns
    -------
    Recording
    """
    import mne

    from .score import open_recording, recording_features, select_signals

    path = Path(path)
    src = open_recording(path, fast=False)  # MNE: annotations and one common rate
    raw = src.raw
    sf = float(raw.info["sfreq"])
    n_epochs = int(raw.n_times // round(EPOCH_S * sf))
    if n_epochs < 1:
        raise StagingError(f"{path}: shorter than one epoch")
    hyp = Path(hypnogram) if hypnogram is not None else _find_hypnogram(path)
    if hyp is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ann = mne.read_annotations(hyp)
            except Exception as exc:  # noqa: BLE001 - unreadable hypnogram file: bad input
                raise StagingError(f"{hyp}: cannot read stage annotations: {exc}") from None
    else:
        ann = raw.annotations
    t0 = 0.0
    if raw.info["meas_date"] is not None and ann.orig_time is not None:
        t0 = (ann.orig_time - raw.info["meas_date"]).total_seconds()
    triples = [(o + t0, d, s) for o, d, s in zip(ann.onset, ann.duration, ann.description)]
    labels = stage_labels(triples, n_epochs)
    if not np.any(labels >= 0):
        raise StagingError(f"{path}: no 'Sleep stage' annotations found (hypnogram: {hyp})")
    sel = select_signals(src, eeg, eog, emg, f"{path.name}: ", [])
    feats = recording_features(src, sel, n_epochs, sf)
    if trim_wake_min >= 0:
        sleep = np.flatnonzero(labels > 0)
        if sleep.size:
            pad = int(trim_wake_min * 60 / EPOCH_S)
            sl = slice(max(sleep[0] - pad, 0), min(sleep[-1] + pad + 1, n_epochs))
            feats, labels = feats.take(sl), labels[sl]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    info = {"file": path.name, "sha256_16": digest, "hypnogram": None if hyp is None else hyp.name}
    info.update(channels=sel.describe(), sfreq=sf)
    return Recording(feats, labels, f"edf:{path.name}", info)


# --------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------


def fit_prior(recordings: list[Recording]) -> NormPrior:
    """Fit population normalisation statistics from whole recordings."""
    meds, scales = [], []
    neutral = NormPrior.neutral()
    cols = np.arange(N_COLUMNS)
    for r in recordings:
        f = r.features
        s = np.sort(f.values[f.valid], axis=0)
        n = np.sum(np.isfinite(f.values[f.valid]), axis=0)
        if s.shape[0] == 0:
            continue
        idx = {p: np.round(p * (np.maximum(n, 1) - 1)).astype(int) for p in (0.25, 0.5, 0.75)}
        meds.append(np.where(n > 0, s[idx[0.5], cols], np.nan))
        scales.append(np.where(n > 1, (s[idx[0.75], cols] - s[idx[0.25], cols]) / 1.349, np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(np.array(meds), axis=0)
        scale = np.nanmedian(np.array(scales), axis=0)
    median = np.where(np.isfinite(median), median, 0.0)
    scale = np.where(np.isfinite(scale) & (scale > 1e-6), scale, 1.0)
    # raw (population-standardised) part: inv columns and deferred features
    rows = []
    for r in recordings:
        f = r.features
        med, _ = robust_stats(f.values[f.valid], neutral)
        raw = np.concatenate([f.values[:, INV_COLUMNS], deferred_columns(f, med)], axis=1)
        rows.append(raw[f.valid])
    allraw = np.concatenate(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mu = np.nanmean(allraw, axis=0)
        sd = np.nanstd(allraw, axis=0)
    mu = np.where(np.isfinite(mu), mu, 0.0)
    sd = np.where(np.isfinite(sd) & (sd > 1e-9), sd, 1.0)
    return NormPrior(median, scale, mu, sd)


def _crops(n: int, rng: np.random.Generator, n_crops: int) -> list[slice]:
    out = [slice(0, n)]
    for _ in range(n_crops):
        length = int(np.exp(rng.uniform(np.log(10), np.log(240))))  # 5 min .. 2 h
        length = min(length, n)
        start = int(rng.integers(0, n - length + 1))
        out.append(slice(start, start + length))
    return out


#: Bits of the signals a training row's recording holds (besides EEG).
_HAS_EOG, _HAS_EMG = 1, 2


def _signal_bits(f: EpochFeatures) -> int:
    m = modality_of(f.indicators)
    return (_HAS_EOG if "eog" in m else 0) | (_HAS_EMG if "emg" in m else 0)


def build_rows(
    recordings: list[Recording],
    prior: NormPrior,
    n_crops: int,
    seed: int,
    real_share: float = REAL_WEIGHT_SHARE,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Context-stacked inputs, labels, weights and signals of every mode, over recordings and crops.

    Parameters
    ----------
    recordings : list of Recording
        Training recordings, simulated and scored.
    prior : NormPrior
        Population normalisation statistics.
    n_crops : int
        Random crops per recording besides the whole recording.
    seed : int
        Seed of the crops.
    real_share : float
        Share of the total weight carried by the scored (not simulated) recordings, when there
        are both kinds.

    Returns
    -------
    dict
        ``{mode: (X, y, w, signals)}`` with only labelled, valid epochs: inputs (every input
        column), stages, sample weights and the signal bits of the row's recording.
    """
    rng = np.random.default_rng([seed, 99])
    out: dict[str, list] = {m: ([], [], [], [], []) for m in CONTEXT}
    for r in recordings:
        bits = _signal_bits(r.features)
        for sl in _crops(r.features.n_epochs, rng, n_crops):
            f, y = r.features.take(sl), r.labels[sl]
            keep = f.valid & (y >= 0)
            if not keep.any():
                continue
            for mode, norm in (("online", normalize_online), ("offline", normalize_offline)):
                x = stack_context(norm(f, prior), f.valid, CONTEXT[mode])
                xs, ys, sims, sigs, _ = out[mode]
                xs.append(x[keep].astype(np.float32))
                ys.append(y[keep])
                sims.append(np.full(int(keep.sum()), r.simulated))
                sigs.append(np.full(int(keep.sum()), bits, dtype=np.int8))
    rows = {}
    for mode, (xs, ys, sims, sigs, _) in out.items():
        sim = np.concatenate(sims)
        w = np.ones(sim.size)
        n_sim, n_real = int(sim.sum()), int((~sim).sum())
        if n_sim and n_real:
            w[~sim] = real_share / (1.0 - real_share) * n_sim / n_real
        rows[mode] = (np.concatenate(xs), np.concatenate(ys), w, np.concatenate(sigs))
    return rows


def _class_weights(y: np.ndarray, sw: np.ndarray) -> np.ndarray:
    """Weight per stage, shape (N_STAGES,): mild re-weighting toward rare stages (N1).

    Inverse square root of the (sample-weighted) frequency, scaled to a weighted mean of 1.
    """
    counts = np.bincount(y, weights=sw, minlength=N_STAGES)
    cw = 1.0 / np.sqrt(np.maximum(counts, 1.0) / counts.sum())
    return cw / np.sum(cw * counts / counts.sum())


def _loss_grads(net: MLP, xb, yb, wb, l2: float) -> tuple[float, tuple]:
    """Weighted cross-entropy of a minibatch and its gradients (w1, b1, w2, b2)."""
    hpre = xb @ net.w1 + net.b1
    h = np.maximum(hpre, 0.0)
    z = h @ net.w2 + net.b2
    z -= z.max(-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(-1, keepdims=True)
    loss = float(-np.sum(wb * np.log(p[np.arange(len(yb)), yb] + 1e-12)))
    g = p
    g[np.arange(len(yb)), yb] -= 1.0
    g *= (wb / wb.sum())[:, None]
    gw2 = h.T @ g + l2 * net.w2
    gb2 = g.sum(0)
    gh = (g @ net.w2.T) * (hpre > 0)
    gw1 = xb.T @ gh + l2 * net.w1
    gb1 = gh.sum(0)
    return loss, (gw1, gb1, gw2, gb2)


def _adam_step(params: list, grads: tuple, m: list, v: list, step: int, rate) -> None:
    """One Adam update of ``params`` in place (moments ``m``, ``v`` updated too)."""
    b1, b2, eps = 0.9, 0.999, 1e-8
    for j, gr in enumerate(grads):
        m[j] = b1 * m[j] + (1 - b1) * gr
        v[j] = b2 * v[j] + (1 - b2) * gr * gr
        mh = m[j] / (1 - b1**step)
        vh = v[j] / (1 - b2**step)
        params[j] -= rate * mh / (np.sqrt(vh) + np.float32(eps))


def fit_mlp(
    x: np.ndarray,
    y: np.ndarray,
    n_hidden: int = 48,
    epochs: int = 25,
    batch: int = 256,
    lr: float = 2e-3,
    l2: float = 1e-4,
    noise: float = 0.15,
    seed: int = 0,
    verbose: bool = False,
    weights: np.ndarray | None = None,
) -> MLP:
    """Train a one-hidden-layer MLP with Adam on cross-entropy.

    Parameters
    ----------
    x : ndarray, shape (n, n_in)
        Inputs.
    y : ndarray of int, shape (n,)
        Stages 0-4.
    n_hidden : int
        Hidden units.
    epochs : int
        Passes over the data (the learning rate decays linearly to 10% over them).
    batch : int
        Minibatch size.
    lr : float
        Initial Adam learning rate.
    l2 : float
        Weight decay on the weight matrices.
    noise : float
        SD of Gaussian noise added to the inputs during training (robustness).
    seed : int
        Seed of initialisation, shuffling and noise.
    verbose : bool
        Print the loss per pass.
    weights : ndarray, shape (n,), optional
        Sample weights (None: all 1), multiplied with the class weights.

    Returns
    -------
    MLP
    """
    rng = np.random.default_rng([seed, 4242])
    n, d = x.shape
    x = np.asarray(x, dtype=np.float32)
    init = MLP.init(d, n_hidden, rng)
    # float32 arithmetic: twice the speed of float64, and the model is stored as float32
    net = MLP(*(a.astype(np.float32) for a in (init.w1, init.b1, init.w2, init.b2)))
    params = [net.w1, net.b1, net.w2, net.b2]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    sw = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    cw = _class_weights(y, sw)
    step = 0
    n_steps = epochs * int(np.ceil(n / batch))
    for ep in range(epochs):
        order = rng.permutation(n)
        total = 0.0
        for i in range(0, n, batch):
            idx = order[i : i + batch]
            xb = x[idx]
            if noise > 0:
                xb = xb + np.float32(noise) * rng.standard_normal(xb.shape, dtype=np.float32)
            yb = y[idx]
            wb = (cw[yb] * sw[idx]).astype(np.float32)
            loss, grads = _loss_grads(net, xb, yb, wb, l2)
            total += loss
            step += 1
            rate = np.float32(lr * (1.0 - 0.9 * step / n_steps))
            _adam_step(params, grads, m, v, step, rate)
        if verbose:
            print(f"    pass {ep + 1}/{epochs}: loss {total / n:.4f}", flush=True)
    return MLP(*(a.astype(np.float64) for a in params))


def fit_transitions(recordings: list[Recording]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transition matrix, initial distribution and stage frequencies from true hypnograms."""
    counts = np.full((N_STAGES, N_STAGES), 0.5)
    freq = np.full(N_STAGES, 1.0)
    for r in recordings:
        y = r.labels
        ok = (y[:-1] >= 0) & (y[1:] >= 0)
        np.add.at(counts, (y[:-1][ok], y[1:][ok]), 1.0)
        freq += np.bincount(y[y >= 0], minlength=N_STAGES)
    trans = counts / counts.sum(1, keepdims=True)
    prior = freq / freq.sum()
    # recordings may start anywhere (clinical excerpts): mostly the stationary mix, some wake
    initial = 0.5 * prior + 0.5 * np.eye(N_STAGES)[0]
    return trans, initial, prior


def evaluate(model: StagingModel, recordings: list[Recording], mode: str) -> dict[str, float]:
    """Accuracy and kappa of a model over whole recordings (pooled epochs)."""
    from .offline import stage_epochs

    ts, ps = [], []
    for r in recordings:
        st = stage_epochs(r.features, model, mode)
        ts.append(r.labels)
        ps.append(st.stages)
    t, p = np.concatenate(ts), np.concatenate(ps)
    ok = (t >= 0) & (p >= 0)
    return {
        "kappa": round(cohen_kappa(t, p), 4),
        "accuracy": round(float(np.mean(t[ok] == p[ok])), 4),
    }


def _fit_temperature(model: StagingModel, val: list[Recording], mode: str) -> float:
    """Temperature of the final probabilities with the lowest NLL on the validation nights."""
    from .offline import stage_epochs

    model.temperature[mode] = 1.0
    logp, ys = [], []
    for r in val:
        st = stage_epochs(r.features, model, mode)
        ok = (r.labels >= 0) & r.features.valid
        logp.append(np.log(np.maximum(st.probs[ok], 1e-12)))
        ys.append(r.labels[ok])
    if not ys:
        return 1.0
    lp, y = np.concatenate(logp), np.concatenate(ys)
    best = (np.inf, 1.0)
    for t in np.exp(np.linspace(np.log(0.5), np.log(8.0), 41)):
        z = lp / t
        z = z - z.max(-1, keepdims=True)
        nll = float(np.mean(np.log(np.exp(z).sum(-1)) - z[np.arange(y.size), y]))
        best = min(best, (nll, float(t)))
    return round(best[1], 4)


def _distances(model: StagingModel, recordings: list[Recording]) -> list[float]:
    out = []
    for r in recordings:
        f = r.features
        x = normalize_offline(f, model.prior)
        out.append(model.distance(x, f.valid, modality_of(f.indicators)))
    return [d for d in out if np.isfinite(d)]


def _fit_networks(rows: dict, n_hidden: int, epochs: int, seed: int, verbose: bool, t0: float):
    """Fit one MLP per context mode and signal modality on the rows of :func:`build_rows`."""
    nets = {}
    for mode in CONTEXT:
        x, y, w, sig = rows[mode]
        for m in MODALITIES:
            need = (_HAS_EOG if "eog" in m else 0) | (_HAS_EMG if "emg" in m else 0)
            sel = (sig & need) == need
            if not sel.any():
                raise StagingError(f"no training recording holds the signals {m}")
            xm = x[sel][:, context_columns(mode, m)]
            nets[f"{mode}/{m}"] = fit_mlp(
                xm, y[sel], n_hidden=n_hidden, epochs=epochs, seed=seed, weights=w[sel]
            )
            if verbose:
                print(
                    f"  {mode}/{m} MLP fitted on {int(sel.sum())} rows "
                    f"({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
    return nets


def _calibrate(model: StagingModel, val: list[Recording], mode: str, verbose: bool) -> dict:
    """Choose the HMM exponent and the temperature of ``mode`` on the validation nights.

    Without validation nights the exponent is 0.6 and the temperature 1. Returns the
    validation scores of the chosen exponent.
    """
    best = None
    for g in (0.5, 0.75, 1.0, 1.25, 1.5):
        model.gamma[mode] = g
        sc = evaluate(model, val, mode) if val else {"kappa": float("nan")}
        if best is None or sc["kappa"] > best[1]["kappa"]:
            best = (g, sc)
        if not val:
            break
    model.gamma[mode] = best[0] if val else 0.6
    model.temperature[mode] = _fit_temperature(model, val, mode) if val else 1.0
    if verbose:
        print(
            f"  {mode}: gamma {model.gamma[mode]}, temperature {model.temperature[mode]}, "
            f"validation {best[1]}",
            flush=True,
        )
    return best[1]


def train_model(
    train: list[Recording],
    val: list[Recording],
    seed: int = 0,
    n_hidden: int = 48,
    epochs: int = 25,
    n_crops: int = 4,
    verbose: bool = True,
    meta: dict | None = None,
    real_share: float = REAL_WEIGHT_SHARE,
) -> StagingModel:
    """Fit the normalisation prior, the networks, the HMM, exponents and calibration.

    Parameters
    ----------
    train, val : list of Recording
        Training and validation recordings (validation chooses the exponents and temperatures).
    seed : int
        Seed of everything random in the fit.
    n_hidden : int
        Hidden units of each MLP.
    epochs : int
        Training passes.
    n_crops : int
        Random crops per recording in addition to the whole recording.
    verbose : bool
        Print progress.
    meta : dict, optional
        Extra metadata stored in the model JSON.
    real_share : float
        Share of the training weight of the scored (real) recordings (see :func:`build_rows`).

    Returns
    -------
    StagingModel
    """
    t0 = time.perf_counter()
    prior = fit_prior(train)
    trans, initial, class_prior = fit_transitions(train)
    rows = build_rows(train, prior, n_crops, seed, real_share)
    if verbose:
        print(
            f"  rows: {rows['online'][0].shape} online, {rows['offline'][0].shape} offline "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    nets = _fit_networks(rows, n_hidden, epochs, seed, verbose, t0)
    model = StagingModel(prior, nets, trans, initial, class_prior, meta=dict(meta or {}))
    model.meta["validation"] = {mode: _calibrate(model, val, mode, verbose) for mode in CONTEXT}
    dist = _distances(model, train + val)
    model.meta["ood"] = {
        "threshold": round(OOD_MARGIN * max(dist), 4) if dist else None,
        "largest_training_distance": round(max(dist), 4) if dist else None,
        "rule": f"{OOD_MARGIN} x the largest distance among training and validation recordings",
    }
    return model


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def _describe_training(args: argparse.Namespace, train: list[Recording], edf_info: list) -> dict:
    return {
        "trained_on": {
            "simulated_nights": args.nights,
            "simulated_validation_nights": args.val_nights,
            "night_duration_s": args.duration,
            "profiles": list(PROFILE_NAMES),
            "train_seeds": [SEED_BASE, SEED_BASE + args.nights - 1] if args.nights else [],
            "validation_seeds": [VAL_SEED_BASE, VAL_SEED_BASE + args.val_nights - 1]
            if args.val_nights
            else [],
            "augmentation": "EEG: any lead the sleeper renders, or a bipolar difference of two "
            "(30%); per signal gain 0.3-3x, high-pass 0.1-0.7 Hz (70%), low-pass 25-45 Hz (30%), "
            "mains 50/60 Hz 1-10 uV (20%), white noise 0-3 uV; 10% clipped at 50-150 uV; "
            "simulated at 128 Hz, used at 128/100/64 Hz (0.45/0.45/0.1); EOG E1+E2 / E1 / E1-E2 "
            "(0.4/0.3/0.3), half with eye movements scaled 0.2-1.2x; 40% of nights with "
            "0.25-8 h of daytime wake (up and about) before and 0.25-6 h after; "
            "4 crops of 5 min-2 h per recording",
            "real_weight_share": REAL_WEIGHT_SHARE if edf_info and args.nights else None,
            "edf": edf_info,
            "recordings": [dict(name=r.name, **r.info) for r in train],
        },
        "fit": {"seed": args.seed, "hidden": args.hidden, "epochs": args.epochs},
        "feature_version": FEATURE_VERSION,
        "augment_version": AUGMENT_VERSION,
    }


def recalibrate(model: StagingModel, val: list[Recording]) -> StagingModel:
    """Refit the calibration temperature of both modes of a trained model, in place.

    The temperature is the one with the lowest negative log-likelihood of the final
    probabilities on ``val``: simulated validation nights under the training's domain
    randomisation (:func:`simulate_recording`, never a real recording's labels), scored with
    everything the model does at inference (HMM and wake rule). The networks, the HMM exponent
    and the arrays are unchanged.

    Parameters
    ----------
    model : StagingModel
        A trained model.
    val : list of Recording
        Labelled validation recordings.

    Returns
    -------
    StagingModel
        ``model``, with new ``temperature`` and ``meta["calibration"]``.
    """
    if not val:
        raise StagingError("recalibration needs validation nights (--val-nights > 0)")
    for mode in CONTEXT:
        model.temperature[mode] = _fit_temperature(model, val, mode)
    model.meta["calibration"] = {
        "validation_nights": [r.name for r in val],
        "augment_version": AUGMENT_VERSION,
        "rule": "lowest NLL of the final probabilities on simulated validation nights",
    }
    return model


def run_recalibrate(args: argparse.Namespace) -> int:
    """Refit the temperatures of the model ``args.recalibrate`` in ``args.out``; return 0.

    ``args.out`` defaults to the shipped models' directory; only the model's JSON is rewritten.
    """
    from .model import MODEL_DIR

    stem = (Path(args.out) if args.out else MODEL_DIR) / args.recalibrate
    model = StagingModel.load(stem)  # before the nights: a missing model fails at once
    val = [
        _cached_simulation(
            VAL_SEED_BASE + k, PROFILE_NAMES[k % len(PROFILE_NAMES)], args.duration, args.cache
        )
        for k in range(args.val_nights)
    ]
    js = recalibrate(model, val).save_meta(stem)
    print(f"{args.recalibrate}: temperature {model.temperature} -> {js}", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    """Build the training sets, fit both models, save them; return 0.

    Writes ``OUT/simulated-only.{npz,json}`` when there are simulated nights and
    ``OUT/dreamnet_stager.{npz,json}`` (simulated nights and ``--edf`` recordings) into the
    directory ``args.out`` (default: the shipped models' directory).
    """
    from .model import MODEL_DIR

    t0 = time.perf_counter()
    sim: list[Recording] = []
    val: list[Recording] = []
    for i in range(args.nights + args.val_nights):
        is_val = i >= args.nights
        k = i - args.nights if is_val else i
        seed = (VAL_SEED_BASE if is_val else SEED_BASE) + k
        profile = PROFILE_NAMES[k % len(PROFILE_NAMES)]
        rec = _cached_simulation(seed, profile, args.duration, getattr(args, "cache", None))
        (val if is_val else sim).append(rec)
        print(
            f"[{time.perf_counter() - t0:6.0f} s] {'val' if is_val else 'train'} "
            f"{rec.name} {rec.info.get('eeg')} {rec.info.get('sfreq'):g} Hz "
            f"({rec.features.n_epochs} epochs)",
            flush=True,
        )
    real: list[Recording] = []
    for spec in args.edf:
        path, _, hyp = spec.partition("=")
        rec = edf_recording(path, hyp or None, eeg=args.eeg, eog=args.eog, emg=args.emg)
        real.append(rec)
        print(
            f"[{time.perf_counter() - t0:6.0f} s] edf {path} ({rec.features.n_epochs} epochs)",
            flush=True,
        )
    if not sim and not real:
        raise StagingError("nothing to train on: give --nights > 0 or --edf FILE")
    out_dir = Path(args.out) if args.out else MODEL_DIR
    jobs = []
    if sim:
        jobs.append((SIMULATED_ONLY_MODEL, sim))
    if real or not sim:
        jobs.append((DEFAULT_MODEL, sim + real))
    for name, train in jobs:
        print(f"[{time.perf_counter() - t0:6.0f} s] fitting {name}", flush=True)
        meta = _describe_training(args, train, [r.info for r in train if not r.simulated])
        meta["name"] = name
        if sim:
            meta["sleeper_code_sha256"] = _sleeper_digest(with_versions=False)
        model = train_model(
            train, val, seed=args.seed, n_hidden=args.hidden, epochs=args.epochs, meta=meta
        )
        npz, js = model.save(out_dir / name)
        print(
            f"[{time.perf_counter() - t0:6.0f} s] wrote {npz} ({npz.stat().st_size // 1024} KiB) "
            f"and {js}",
            flush=True,
        )
    if not real:  # no scored recordings: the default model is the simulated-only one
        model.meta["name"] = DEFAULT_MODEL
        npz, js = model.save(out_dir / DEFAULT_MODEL)
        print(f"[{time.perf_counter() - t0:6.0f} s] wrote {npz} and {js} (same model)")
    return 0
