"""Train the staging model on simulated nights and on labelled EDF+ recordings.

``python -m staging.stager.train`` or ``dreamnet train``. The default set is simulated nights from the
project's sleeper (``headset.sleeper.Sleeper``) with strong variation between simulated people:
every profile, a fresh subject per seed, EEG from C4-M1, F4-M1 or (rarely) O2-M1, amplitude of
each channel group scaled by 0.5-2x, simulated at 128 Hz (everything the features use) and used
at 128, 100 or 64 Hz (resampled), added white noise, occasional clipping, EOG with two, one or no
channels and smaller eye movements in half the nights, EMG present or not. Scored EDF+
recordings (``--edf``: Sleep-EDF style ``*-Hypnogram.edf`` files next to them, or ``Sleep stage``
annotations inside) are added to the same training set.

Each night is also used in four shorter random crops (5 min to 2 h) so that the normalisation
never relies on a whole night being present. Validation nights (separate seeds) choose the HMM
likelihood exponent of each mode and give the scores stored in the model's JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headset.stages import EPOCH_S, UNSCORED, parse_stage_annotation

from ..errors import StagingError
from .features import (
    FEATURE_VERSION,
    INV_COLUMNS,
    N_COLUMNS,
    EpochFeatures,
    NormPrior,
    _deferred,
    _stats_from_sorted,
    continuous_features,
    normalize_offline,
    normalize_online,
)
from .model import CONTEXT, MLP, N_STAGES, StagingModel, stack_context
from ..stats import epoch_agreement

PROFILE_NAMES = ("healthy", "child", "insomnia", "nightmare-prone")
#: Seeds of the default training set are SEED_BASE + i; validation uses VAL_SEED_BASE + i.
#: Benchmarks must use seeds outside both ranges.
SEED_BASE = 1000
VAL_SEED_BASE = 5000
#: Bump when :func:`simulate_recording` changes what it produces (invalidates caches).
AUGMENT_VERSION = 2
_MONTAGE = ("EEG F4-M1", "EEG C4-M1", "EEG O2-M1", "EOG E1-M2", "EOG E2-M2", "EMG chin")


@dataclass
class Recording:
    """Raw epoch features and true stages of one training recording."""

    features: EpochFeatures
    labels: np.ndarray
    name: str
    info: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# Simulated nights
# --------------------------------------------------------------------------------------


def _resample(x: np.ndarray, sfreq: float, new: float) -> np.ndarray:
    from fractions import Fraction

    from scipy.signal import resample_poly

    fr = Fraction(new / sfreq).limit_denominator(1000)
    return resample_poly(x, fr.numerator, fr.denominator, axis=-1)


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
        Night length in seconds.
    augment : bool
        Vary channel, amplitude, rate, noise, clipping and EOG/EMG availability.

    Returns
    -------
    Recording
    """
    from headset.sleeper import Sleeper

    # 128 Hz keeps everything the features use (up to 47 Hz) at half the cost of 256 Hz
    sim_rate = 128.0
    s = Sleeper(profile=profile, seed=seed, duration_s=duration_s, sfreq=sim_rate, montage=_MONTAGE)
    chunk = s.read(s.n_samples)
    data, names = chunk.data, list(chunk.ch_names)
    labels = np.asarray(s.hypnogram, dtype=np.int8)
    rng = np.random.default_rng([seed, 7331])
    info: dict = {"seed": seed, "profile": profile}

    def ch(name):
        return data[names.index(name)].astype(np.float64)

    eeg_name = "EEG C4-M1"
    eog_names = ["EOG E1-M2", "EOG E2-M2"]
    use_emg = True
    sfreq = sim_rate
    if augment:
        eeg_name = rng.choice(["EEG C4-M1", "EEG F4-M1", "EEG O2-M1"], p=[0.6, 0.32, 0.08])
        r = rng.random()
        eog_names = eog_names if r < 0.7 else ([eog_names[0]] if r < 0.85 else [])
        use_emg = rng.random() < 0.85
        sfreq = float(rng.choice([128.0, 100.0, 64.0], p=[0.55, 0.3, 0.15]))
    eeg = ch(eeg_name)
    eog = np.stack([ch(n) for n in ("EOG E1-M2", "EOG E2-M2")]) if eog_names else None
    emg = ch("EMG chin") if use_emg else None
    if augment:
        g = np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=3))
        eeg = eeg * g[0] + rng.uniform(0, 3) * rng.standard_normal(eeg.size)
        if eog is not None:
            # eye-movement (anti-phase) part of E1/E2 scaled 0.2-1.2x (electrode placement,
            # people with few or small eye movements), mild gain asymmetry between E1 and E2
            common, diff = (eog[0] + eog[1]) / 2, (eog[0] - eog[1]) / 2
            a = rng.uniform(0.2, 1.2) if rng.random() < 0.5 else 1.0
            asym = np.exp(rng.uniform(-0.2, 0.2, size=2))
            eog = np.stack([(common + a * diff) * asym[0], (common - a * diff) * asym[1]])
            eog = eog[: len(eog_names)]
            info["eye_movement_gain"] = round(float(a), 3)
            eog = eog * g[1] + rng.uniform(0, 3) * rng.standard_normal(eog.shape)
        if emg is not None:
            emg = emg * g[2] + rng.uniform(0, 1) * rng.standard_normal(emg.size)
        if rng.random() < 0.1:
            lim = rng.uniform(50, 150) * g[0]
            eeg = np.clip(eeg, -lim, lim)
            info["clip_uv"] = round(float(lim), 1)
        if sfreq != sim_rate:
            eeg = _resample(eeg, sim_rate, sfreq)
            eog = None if eog is None else _resample(eog, sim_rate, sfreq)
            emg = None if emg is None else _resample(emg, sim_rate, sfreq)
        info.update(gain=[round(float(v), 3) for v in g])
    info.update(eeg=str(eeg_name), eog=list(map(str, eog_names)), emg=use_emg, sfreq=sfreq)
    feats = continuous_features(eeg, sfreq, eog=eog, emg=emg)
    n = min(feats.n_epochs, labels.size)
    return Recording(feats.take(slice(0, n)), labels[:n], f"sim:{profile}:{seed}", info)


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


def stage_labels(annotations, n_epochs: int) -> np.ndarray:
    """Per-epoch stages from ``(onset, duration, description)`` annotations.

    Parameters
    ----------
    annotations : iterable of (float, float, str)
        Onset (s from the recording start), duration (s) and text; texts that are not stages
        are ignored (see :func:`headset.stages.parse_stage_annotation`).
    n_epochs : int
        Number of epochs of the recording.

    Returns
    -------
    ndarray of int8, shape (n_epochs,)
        Stage codes, -1 where no stage annotation covers the epoch's start.
    """
    labels = np.full(n_epochs, UNSCORED, dtype=np.int8)
    for onset, duration, text in annotations:
        code = parse_stage_annotation(str(text))
        if code is None:
            continue
        k0 = int(np.ceil(onset / EPOCH_S - 1e-6))
        k1 = int(np.ceil((onset + max(duration, EPOCH_S)) / EPOCH_S - 1e-6))
        labels[max(k0, 0) : min(k1, n_epochs)] = code
    return labels


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

    from .score import _features, _open, _select

    path = Path(path)
    src = _open(path, fast=False)  # MNE: annotations and one common rate
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
    sel = _select(src, eeg, eog, emg, f"{path.name}: ", [])
    feats = _features(src, sel, n_epochs, sf)
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
        s = np.sort(f.values[f.valid], axis=0)
        n = np.sum(np.isfinite(f.values[f.valid]), axis=0)
        med, _ = _stats_from_sorted(
            s if s.shape[0] else np.full((1, N_COLUMNS), np.nan), n, neutral
        )
        raw = np.concatenate([f.values[:, INV_COLUMNS], _deferred(f, med)], axis=1)
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


def build_rows(
    recordings: list[Recording], prior: NormPrior, n_crops: int, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Context-stacked inputs and labels of every mode, over whole recordings and crops.

    Returns
    -------
    dict
        ``{"online": (X, y), "offline": (X, y)}`` with only labelled, valid epochs.
    """
    rng = np.random.default_rng([seed, 99])
    out: dict[str, list] = {m: ([], []) for m in CONTEXT}
    for r in recordings:
        for sl in _crops(r.features.n_epochs, rng, n_crops):
            f, y = r.features.take(sl), r.labels[sl]
            keep = f.valid & (y >= 0)
            if not keep.any():
                continue
            for mode, norm in (("online", normalize_online), ("offline", normalize_offline)):
                x = stack_context(norm(f, prior), f.valid, CONTEXT[mode])
                out[mode][0].append(x[keep].astype(np.float32))
                out[mode][1].append(y[keep])
    return {m: (np.concatenate(xs), np.concatenate(ys)) for m, (xs, ys) in out.items()}


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

    Returns
    -------
    MLP
    """
    rng = np.random.default_rng([seed, 4242])
    n, d = x.shape
    net = MLP.init(d, n_hidden, rng)
    params = [net.w1, net.b1, net.w2, net.b2]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    counts = np.bincount(y, minlength=N_STAGES).astype(np.float64)
    # mild re-weighting toward rare stages (N1): inverse square root of frequency
    cw = 1.0 / np.sqrt(np.maximum(counts, 1.0) / counts.sum())
    cw = cw / np.sum(cw * counts / counts.sum())
    step = 0
    n_steps = epochs * int(np.ceil(n / batch))
    for ep in range(epochs):
        order = rng.permutation(n)
        total = 0.0
        for i in range(0, n, batch):
            idx = order[i : i + batch]
            xb = x[idx].astype(np.float64)
            if noise > 0:
                xb = xb + noise * rng.standard_normal(xb.shape)
            yb = y[idx]
            wb = cw[yb]
            hpre = xb @ net.w1 + net.b1
            h = np.maximum(hpre, 0.0)
            z = h @ net.w2 + net.b2
            z -= z.max(-1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(-1, keepdims=True)
            total += float(-np.sum(wb * np.log(p[np.arange(len(yb)), yb] + 1e-12)))
            g = p
            g[np.arange(len(yb)), yb] -= 1.0
            g *= (wb / wb.sum())[:, None]
            gw2 = h.T @ g + l2 * net.w2
            gb2 = g.sum(0)
            gh = (g @ net.w2.T) * (hpre > 0)
            gw1 = xb.T @ gh + l2 * net.w1
            gb1 = gh.sum(0)
            step += 1
            rate = lr * (1.0 - 0.9 * step / n_steps)
            for j, gr in enumerate((gw1, gb1, gw2, gb2)):
                m[j] = b1 * m[j] + (1 - b1) * gr
                v[j] = b2 * v[j] + (1 - b2) * gr * gr
                mh = m[j] / (1 - b1**step)
                vh = v[j] / (1 - b2**step)
                params[j] -= rate * mh / (np.sqrt(vh) + eps)
        if verbose:
            print(f"    pass {ep + 1}/{epochs}: loss {total / n:.4f}", flush=True)
    return net


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


def cohen_kappa(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Cohen's kappa over epochs where both are scored (0-4); see :func:`epoch_agreement`."""
    return epoch_agreement(y_true, y_pred)[1]


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


def train_model(
    train: list[Recording],
    val: list[Recording],
    seed: int = 0,
    n_hidden: int = 48,
    epochs: int = 25,
    n_crops: int = 4,
    verbose: bool = True,
    meta: dict | None = None,
) -> StagingModel:
    """Fit the normalisation prior, both MLPs, the HMM and the likelihood exponents.

    Parameters
    ----------
    train, val : list of Recording
        Training and validation recordings (validation chooses the exponents).
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

    Returns
    -------
    StagingModel
    """
    t0 = time.perf_counter()
    prior = fit_prior(train)
    trans, initial, class_prior = fit_transitions(train)
    rows = build_rows(train, prior, n_crops, seed)
    if verbose:
        print(
            f"  rows: {rows['online'][0].shape} online, {rows['offline'][0].shape} offline "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    nets = {}
    for mode in ("online", "offline"):
        x, y = rows[mode]
        nets[mode] = fit_mlp(x, y, n_hidden=n_hidden, epochs=epochs, seed=seed, verbose=False)
        if verbose:
            print(f"  {mode} MLP fitted ({time.perf_counter() - t0:.0f} s)", flush=True)
    model = StagingModel(prior, nets, trans, initial, class_prior, meta=dict(meta or {}))
    scores = {}
    for mode in ("online", "offline"):
        best = None
        for g in (0.5, 0.75, 1.0, 1.25, 1.5):
            model.gamma[mode] = g
            sc = evaluate(model, val, mode) if val else {"kappa": float("nan")}
            if best is None or sc["kappa"] > best[1]["kappa"]:
                best = (g, sc)
            if not val:
                break
        model.gamma[mode] = best[0] if val else 0.6
        scores[mode] = best[1]
        if verbose:
            print(f"  {mode}: gamma {model.gamma[mode]}, validation {best[1]}", flush=True)
    model.meta["validation"] = scores
    return model


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Build the training set, fit, save; return 0."""
    from .model import DEFAULT_MODEL, MODEL_DIR

    t0 = time.perf_counter()
    train: list[Recording] = []
    val: list[Recording] = []
    for i in range(args.nights + args.val_nights):
        is_val = i >= args.nights
        k = i - args.nights if is_val else i
        seed = (VAL_SEED_BASE if is_val else SEED_BASE) + k
        profile = PROFILE_NAMES[k % len(PROFILE_NAMES)]
        rec = _cached_simulation(seed, profile, args.duration, getattr(args, "cache", None))
        (val if is_val else train).append(rec)
        print(
            f"[{time.perf_counter() - t0:6.0f} s] {'val' if is_val else 'train'} "
            f"{rec.name} {rec.info.get('eeg')} {rec.info.get('sfreq'):g} Hz "
            f"({rec.features.n_epochs} epochs)",
            flush=True,
        )
    edf_info = []
    for spec in args.edf:
        path, _, hyp = spec.partition("=")
        rec = edf_recording(path, hyp or None, eeg=args.eeg, eog=args.eog, emg=args.emg)
        train.append(rec)
        edf_info.append(rec.info)
        print(
            f"[{time.perf_counter() - t0:6.0f} s] edf {path} ({rec.features.n_epochs} epochs)",
            flush=True,
        )
    if not train:
        raise StagingError("nothing to train on: give --nights > 0 or --edf FILE")
    meta = {
        "trained_on": {
            "simulated_nights": args.nights,
            "simulated_validation_nights": args.val_nights,
            "night_duration_s": args.duration,
            "profiles": list(PROFILE_NAMES),
            "train_seeds": [SEED_BASE, SEED_BASE + args.nights - 1] if args.nights else [],
            "validation_seeds": [VAL_SEED_BASE, VAL_SEED_BASE + args.val_nights - 1]
            if args.val_nights
            else [],
            "augmentation": "EEG C4/F4/O2 (0.6/0.32/0.08); gain 0.5-2x per channel group; "
            "simulated at 128 Hz, used at 128/100/64 Hz (0.55/0.3/0.15); "
            "white noise 0-3 uV; 10% clipped at 50-150 uV; "
            "EOG 2/1/0 channels (0.7/0.15/0.15), half the nights with the anti-phase eye-movement "
            "part scaled 0.2-1.2x and E1/E2 gains +-20%; EMG 85%; 4 crops of 5 min-2 h per night",
            "edf": edf_info,
            "recordings": [dict(name=r.name, **r.info) for r in train],
        },
        "fit": {"seed": args.seed, "hidden": args.hidden, "epochs": args.epochs},
    }
    if args.nights or args.val_nights:
        meta["sleeper_code_sha256"] = _sleeper_digest(with_versions=False)
    meta["feature_version"] = FEATURE_VERSION
    meta["augment_version"] = AUGMENT_VERSION
    model = train_model(
        train, val, seed=args.seed, n_hidden=args.hidden, epochs=args.epochs, meta=meta
    )
    out = Path(args.out) if args.out else MODEL_DIR / DEFAULT_MODEL
    npz, js = model.save(out)
    print(
        f"[{time.perf_counter() - t0:6.0f} s] wrote {npz} ({npz.stat().st_size // 1024} KiB) "
        f"and {js}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m staging.stager.train``."""
    from ..cli import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
