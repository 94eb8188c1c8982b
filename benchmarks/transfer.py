"""Why the stager does not transfer from simulated to real sleep, with numbers (issue 11, item 1).

Puts the real scored night SC4001 (Sleep-EDF Expanded: EEG Fpz-Cz and Pz-Oz, horizontal EOG, at
100 Hz; the usual window from 30 min before the first to 30 min after the last sleep epoch;
R&K stages 3 and 4 are N3) side by side with simulated healthy nights rendered at the closest
montage and the same rate (the sleeper's most frontal and most occipital leads, E1-M2 minus E2-M2
as the horizontal EOG, 100 Hz; no EMG on either side: the real chin EMG is a 1-Hz envelope):

1. Shift of every raw epoch feature (``continuous_features``) and every model input
   (``normalize_offline`` with the model's prior), per stage W, N1, N2, N3, R: standardised mean
   difference (simulated minus real, over the pooled SD) and the two-sample Kolmogorov-Smirnov D;
   ranked by |SMD| averaged over the stages. Table of the top 20, CSV of all.
2. What the model leans on: permutation importance on the simulated nights (drop of the offline
   kappa, and rise of the log loss, when one raw feature with its ``z_`` and ``raw_`` inputs, one
   group of event amplitudes, or a whole family of features is shuffled across the epochs of each
   night; one shuffle each), and the ranking "shifted and leaned on": |SMD| x log-loss rise (one
   shuffled feature rarely moves the kappa of a model with redundant inputs and HMM smoothing).
3. Per-stage mean log power spectra, real against simulated (Welch 4-s segments, 0.5-35 Hz),
   frontal and occipital leads: a PNG figure and, per stage and band, whether the simulated
   spectrum lies above or below the real one; the aperiodic slope per stage.

The real night is for measurement only: nothing here is fitted to it (``../shared/data/README.md``).
Without the data folder the script says so and exits 0.

Run from the repository root::

    .venv/bin/python benchmarks/transfer.py                  # 4 simulated 8-h nights (minutes)
    .venv/bin/python benchmarks/transfer.py --quick          # 1 simulated 1.5-h night (< 30 s)
    .venv/bin/python benchmarks/transfer.py --model path/to/model --out DIR --force
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from headset.sleeper import CHANNELS, Sleeper  # noqa: E402
from headset.stages import EPOCH_S, STAGE_NAMES  # noqa: E402
from staging.errors import StagingError  # noqa: E402
from staging.stager.evaluate import (  # noqa: E402
    epoch_agreement,
    scored_window,
    stage_labels,
)
from staging.stager.features import (  # noqa: E402
    COLUMN_NAMES,
    INPUT_NAMES,
    continuous_features,
    normalize_offline,
)
from staging.stager.model import resolve_model  # noqa: E402
from staging.stager.offline import stage_epochs  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "real" / "sleep-edf"
PSG_NAME = "SC4001E0-PSG.edf"
HYPNOGRAM_NAME = "SC4001EC-Hypnogram.edf"
REAL_LEADS = {"frontal": "EEG Fpz-Cz", "occipital": "EEG Pz-Oz", "eog": "EOG horizontal"}
#: Sleeper leads closest to the real ones, most preferred first (matched in the labels).
SIM_LEAD_PREFERENCE = {
    "frontal": ("Fpz", "Fp2", "Fp1", "AF", "Fz", "F4", "F3"),
    "occipital": ("Pz-Oz", "Oz", "O2", "O1", "Pz"),
}
SFREQ = 100.0  # Hz: the real night's rate, and the rate of the comparison
SIM_RENDER_SFREQ = 200.0  # Hz: the sleeper renders here, then is resampled to SFREQ
SEED_BASE = 7100  # outside the training (1000+) and validation (5000+) seeds
MIN_EPOCHS = 3  # fewer epochs of a stage on either side: no shift measure
TOP = 20
#: Event amplitudes behind the recording-relative inputs (slow-wave coverage, eye-movement
#: density): shuffled together, as one group each.
EVENT_GROUPS = {"slow-wave events": ("sw_p2p", "sw_dur"), "eye-movement events": ("em_slopes",)}
#: Families of features shuffled together (name substrings, first match wins; else amplitude).
FAMILIES = (
    ("EOG", ("eog", "em_", "eye")),
    ("EMG", ("emg",)),
    ("delta/slow waves", ("delta", "slow", "sw_")),
    ("sigma/spindles", ("sigma", "spindle")),
    ("theta/alpha", ("theta", "alpha")),
    ("beta/high", ("beta", "_hi")),
    ("spectral shape", ("entropy", "sef", "mobility", "complexity", "zero_cross")),
)
WELCH_SEG = 400  # 4 s at 100 Hz
SPEC_FMIN, SPEC_FMAX = 0.5, 35.0
BANDS = ((0.5, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 12.0), (12.0, 16.0), (16.0, 30.0), (30.0, 35.0))
CLOSE_DB = 1.0  # |simulated - real| below this (dB) counts as "close"
#: Aperiodic fit: log-log line over 2-30 Hz without the alpha and sigma peaks (7-16 Hz).
SLOPE_FIT = ((2.0, 7.0), (16.0, 30.0))
#: Ranges (Hz) searched for a peak above the aperiodic background.
PEAK_RANGES = {"theta": (4.0, 7.5), "alpha": (7.5, 11.5), "sigma": (11.5, 16.0)}
OUT_FILES = ("transfer_shift.csv", "transfer_importance.csv", "transfer_spectra.png")


class UsageError(Exception):
    """Bad command-line input: one line on stderr, exit 2."""


@dataclasses.dataclass
class Night:
    """Signals of one recording at :data:`SFREQ` and their per-epoch labels.

    Attributes
    ----------
    leads : dict of str to ndarray
        ``"frontal"``, ``"occipital"`` EEG and ``"eog"`` (horizontal), µV, same length.
    labels : ndarray of int, shape (n_epochs,)
        Stage codes 0-4, -1 unscored.
    channels : dict of str to str
        Source channel of each lead.
    """

    leads: dict
    labels: np.ndarray
    channels: dict


# --------------------------------------------------------------------------------------
# Loading and simulating
# --------------------------------------------------------------------------------------


def load_real(folder: Path) -> Night:
    """Read the real night's window: EEG Fpz-Cz, Pz-Oz, horizontal EOG, expert stages."""
    import mne

    psg, hyp = folder / PSG_NAME, folder / HYPNOGRAM_NAME
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            raw = mne.io.read_raw_edf(
                psg, include=list(REAL_LEADS.values()), preload=True, verbose="error"
            )
            ann = mne.read_annotations(hyp)
        except (OSError, ValueError, RuntimeError) as exc:
            raise UsageError(
                f"{psg.name}: cannot read the night and its hypnogram: {exc}"
            ) from None
    missing = [c for c in REAL_LEADS.values() if c not in raw.ch_names]
    if missing:
        raise UsageError(f"{psg}: channels {missing} not found")
    if abs(raw.info["sfreq"] - SFREQ) > 1e-6:
        raise UsageError(f"{psg}: expected {SFREQ:g} Hz, got {raw.info['sfreq']:g} Hz")
    n_per = int(EPOCH_S * SFREQ)
    n_epochs = raw.n_times // n_per
    t0 = 0.0
    if raw.info["meas_date"] is not None and ann.orig_time is not None:
        t0 = (ann.orig_time - raw.info["meas_date"]).total_seconds()
    triples = zip(ann.onset + t0, ann.duration, ann.description)
    labels = stage_labels(triples, n_epochs).astype(np.int64)
    w = scored_window(labels)
    if w.stop == 0:
        raise UsageError("the hypnogram has no sleep epoch (N1, N2, N3 or R)")
    data = raw.get_data(picks=list(REAL_LEADS.values())) * 1e6  # V -> µV
    data = data[:, w.start * n_per : w.stop * n_per]
    leads = {role: data[i] for i, role in enumerate(REAL_LEADS)}
    return Night(leads, labels[w], dict(REAL_LEADS))


def sim_leads() -> dict[str, str]:
    """Pick the sleeper's channels closest to the real montage (checked at run time)."""
    eeg = [c for c, t in CHANNELS.items() if t == "eeg"]
    out = {}
    for role, prefs in SIM_LEAD_PREFERENCE.items():
        hits = [c for p in prefs for c in eeg if p.lower() in c.lower()]
        if not hits:
            raise UsageError(f"the sleeper has no {role} EEG lead among {eeg}")
        out[role] = hits[0]
    eog = [c for c, t in CHANNELS.items() if t == "eog"]
    horizontal = [c for c in eog if "horiz" in c.lower() or "heog" in c.lower()]
    if horizontal:
        out["eog"] = horizontal[0]
    elif {"EOG E1-M2", "EOG E2-M2"} <= set(eog):
        out["eog"] = "EOG E1-M2 - EOG E2-M2"
    else:
        raise UsageError(f"the sleeper has no horizontal EOG (channels {eog})")
    return out


def simulate_night(seed: int, duration_s: float, leads: dict[str, str]) -> Night:
    """Render a healthy simulated night at the chosen leads, resampled to :data:`SFREQ`."""
    from scipy.signal import resample_poly

    eog_parts = leads["eog"].split(" - ")
    montage = [leads["frontal"], leads["occipital"], *eog_parts]
    s = Sleeper(
        profile="healthy",
        seed=seed,
        duration_s=duration_s,
        sfreq=SIM_RENDER_SFREQ,
        montage=montage,
    )
    chunk = s.read(s.n_samples)
    data = resample_poly(chunk.data.astype(np.float64), 1, int(SIM_RENDER_SFREQ / SFREQ), axis=-1)
    row = {name: data[i] for i, name in enumerate(chunk.ch_names)}
    eog = row[eog_parts[0]] - row[eog_parts[1]] if len(eog_parts) == 2 else row[eog_parts[0]]
    signals = {"frontal": row[leads["frontal"]], "occipital": row[leads["occipital"]], "eog": eog}
    labels = np.asarray(s.hypnogram, dtype=np.int64)
    return Night(signals, labels, dict(leads))


# --------------------------------------------------------------------------------------
# Features and shift measures
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class NightFeatures:
    """Raw features and model inputs of one lead of one night (epochs aligned with labels)."""

    features: object  # EpochFeatures
    inputs: np.ndarray
    labels: np.ndarray


def night_features(night: Night, lead: str, prior) -> NightFeatures:
    """Raw epoch features (EEG ``lead`` + horizontal EOG) and offline-normalised inputs."""
    f = continuous_features(night.leads[lead], SFREQ, eog=night.leads["eog"])
    n = min(f.n_epochs, night.labels.size)
    f = f.take(slice(0, n))
    return NightFeatures(f, normalize_offline(f, prior), night.labels[:n])


def stage_samples(parts: list[NightFeatures], space: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of valid, scored epochs pooled over nights: (values (n, n_cols), labels (n,))."""
    xs, ys = [], []
    for p in parts:
        keep = p.features.valid & (p.labels >= 0)
        xs.append((p.features.values if space == "raw" else p.inputs)[keep])
        ys.append(p.labels[keep])
    return np.concatenate(xs), np.concatenate(ys)


def shift_rows(real: NightFeatures, sims: list[NightFeatures], lead: str) -> list[dict]:
    """Per feature and stage: means, SDs, SMD (sim - real over pooled SD) and KS D."""
    from scipy.stats import ks_2samp

    rows = []
    for space, names in (("input", INPUT_NAMES), ("raw", COLUMN_NAMES)):
        xr, yr = stage_samples([real], space)
        xs, ys = stage_samples(sims, space)
        for j, name in enumerate(names):
            for st, st_name in enumerate(STAGE_NAMES):
                a = xs[ys == st, j]
                b = xr[yr == st, j]
                a, b = a[np.isfinite(a)], b[np.isfinite(b)]
                row = dict(lead=lead, space=space, feature=name, stage=st_name)
                row.update(n_sim=a.size, n_real=b.size)
                smd = d = p = m_s = m_r = s_s = s_r = float("nan")
                if a.size >= MIN_EPOCHS and b.size >= MIN_EPOCHS:
                    m_s, m_r = float(a.mean()), float(b.mean())
                    s_s, s_r = float(a.std(ddof=1)), float(b.std(ddof=1))
                    pooled = np.sqrt((s_s**2 + s_r**2) / 2.0)
                    if pooled > 1e-12:  # a constant on both sides (indicators) has no SMD
                        smd = (m_s - m_r) / pooled
                        ks = ks_2samp(a, b, method="asymp")
                        d, p = float(ks.statistic), float(ks.pvalue)
                row.update(mean_sim=m_s, mean_real=m_r, sd_sim=s_s, sd_real=s_r)
                row.update(smd=smd, ks_d=d, ks_p=p)
                rows.append(row)
    return rows


def _finite_mean(v) -> float:
    v = np.asarray(v, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def rank_shifts(rows: list[dict], lead: str, space: str) -> list[dict]:
    """One entry per feature: per-stage SMD, mean |SMD| and mean KS D, most shifted first."""
    by = {}
    for r in rows:
        if r["lead"] == lead and r["space"] == space:
            by.setdefault(r["feature"], {})[r["stage"]] = r
    out = []
    for name, st in by.items():
        smd = {s: st[s]["smd"] for s in STAGE_NAMES}
        mean_abs = _finite_mean(np.abs(list(smd.values())))
        if np.isfinite(mean_abs):
            out.append(
                dict(
                    feature=name,
                    smd=smd,
                    mean_abs_smd=mean_abs,
                    mean_ks_d=_finite_mean([st[s]["ks_d"] for s in STAGE_NAMES]),
                )
            )
    return sorted(out, key=lambda e: -e["mean_abs_smd"])


def print_importance(entries: list[dict], what: str) -> None:
    print(f"\n  {'rank':>4}  {what:<26}{'drop':>8}{'loss+':>8}{'shift':>7}  inputs it changes")
    for i, e in enumerate(entries, 1):
        inputs = ", ".join(e["inputs"])
        inputs = inputs if len(inputs) <= 60 else f"{len(e['inputs'])} inputs"
        print(
            f"  {i:>4}  {e['group']:<26}{e['drop']:>+8.3f}{e['loss_rise']:>+8.3f}"
            f"{e['shift']:>7.2f}  {inputs}"
        )


def _cells(smd: dict) -> str:
    """Per-stage SMDs as fixed-width cells ("-" where a stage has too few epochs)."""
    return "".join(f"{smd[s]:>+9.2f}" if np.isfinite(smd[s]) else f"{'-':>9}" for s in STAGE_NAMES)


def print_shift_table(ranked: list[dict], title: str, top: int = TOP) -> None:
    print(f"\n{title}")
    head = "".join(f"{'SMD ' + s:>9}" for s in STAGE_NAMES)
    print(f"  {'rank':>4}  {'feature':<24}{head}{'mean|SMD|':>11}{'mean D':>8}")
    for i, e in enumerate(ranked[:top], 1):
        cells = _cells(e["smd"])
        print(
            f"  {i:>4}  {e['feature']:<24}{cells}{e['mean_abs_smd']:>11.2f}{e['mean_ks_d']:>8.2f}"
        )


# --------------------------------------------------------------------------------------
# Permutation importance
# --------------------------------------------------------------------------------------


def family_of(group: str) -> str:
    """Physiological family of a raw column or event group (first matching rule of FAMILIES)."""
    for family, keys in FAMILIES:
        if any(k in group for k in keys):
            return family
    return "amplitude"


def _shuffled(f, groups: list[str], rng: np.random.Generator):
    """Copy of features ``f`` with raw columns and event groups shuffled across valid epochs.

    One permutation for all of ``groups``: a family keeps the relations between its members.
    """
    idx = np.flatnonzero(f.valid)
    perm = idx[rng.permutation(idx.size)]
    changes = {}
    cols = [COLUMN_NAMES.index(g) for g in groups if g in COLUMN_NAMES]
    if cols:
        values = f.values.copy()
        values[np.ix_(idx, cols)] = values[np.ix_(perm, cols)]
        changes["values"] = values
    for g in groups:
        for attr in EVENT_GROUPS.get(g, ()):
            arr = getattr(f, attr).copy()
            arr[idx] = arr[perm]
            changes[attr] = arr
    return dataclasses.replace(f, **changes)


def permutation_importance(sims: list[NightFeatures], model, seed: int) -> dict[str, list[dict]]:
    """Measure the importance of each feature and family on the simulated nights (one shuffle).

    Each raw column (its ``z_`` and ``raw_`` inputs together) or event group, then each
    family of them at once, is shuffled across the valid epochs of each night and the nights are
    staged offline again.

    Returns
    -------
    dict
        ``{"feature": [...], "family": [...]}``; one entry per group that changes at least one
        model input: the group, the model inputs it changes, the baseline and shuffled pooled
        kappa, the kappa drop, and the rise of the log loss (mean -ln p of the true stage, in
        nats: finer-grained than kappa, which the HMM smoothing and redundant features keep
        nearly unchanged when one feature is shuffled).
    """
    rng = np.random.default_rng([seed, 11])
    truth = np.concatenate([p.labels for p in sims])

    def score(feats) -> tuple[float, float]:
        staged = [stage_epochs(f, model, "offline") for f in feats]
        pred = np.concatenate([st.stages for st in staged])
        probs = np.concatenate([st.probs for st in staged])
        ok = (truth >= 0) & (pred >= 0)
        p_true = probs[np.flatnonzero(ok), truth[ok]]
        return epoch_agreement(truth, pred)[1], float(-np.mean(np.log(np.maximum(p_true, 1e-9))))

    base, base_loss = score([p.features for p in sims])
    events = [g for g, attrs in EVENT_GROUPS.items() if _has(sims, attrs)]
    features = {g: [g] for g in (*COLUMN_NAMES, *events)}
    families: dict[str, list[str]] = {}
    for g in features:
        families.setdefault(family_of(g), []).append(g)
    out = {}
    for kind, groups in (("feature", features), ("family", families)):
        rows = []
        for name, members in groups.items():
            shuffled = [_shuffled(p.features, members, rng) for p in sims]
            changed = np.zeros(len(INPUT_NAMES), dtype=bool)
            for p, f in zip(sims, shuffled):
                x = normalize_offline(f, model.prior)[f.valid]
                changed |= np.any(x != p.inputs[p.features.valid], axis=0)
            if not changed.any():  # features these recordings do not have (no EMG, ...)
                continue
            k, loss = score(shuffled)
            inputs = [INPUT_NAMES[j] for j in np.flatnonzero(changed)]
            rows.append(
                dict(group=name, inputs=inputs, kappa_base=base, kappa=k, drop=base - k)
                | dict(loss_rise=loss - base_loss)
            )
        out[kind] = sorted(rows, key=lambda e: (-e["loss_rise"], -e["drop"]))
    return out


def _has(sims: list[NightFeatures], attrs: tuple[str, ...]) -> bool:
    return all(hasattr(sims[0].features, a) for a in attrs)


def combine(importance: list[dict], ranked_inputs: list[dict]) -> list[dict]:
    """Add the shift of each group (largest mean |SMD| of the inputs it changes) x log-loss rise."""
    shift = {e["feature"]: e for e in ranked_inputs}
    out = []
    for e in importance:
        cand = [shift[n] for n in e["inputs"] if n in shift]
        if not cand:
            continue
        worst = max(cand, key=lambda c: c["mean_abs_smd"])
        out.append(
            dict(
                e,
                shift=worst["mean_abs_smd"],
                shift_input=worst["feature"],
                smd=worst["smd"],
                score=worst["mean_abs_smd"] * max(e["loss_rise"], 0.0),
            )
        )
    return out


# --------------------------------------------------------------------------------------
# Spectra
# --------------------------------------------------------------------------------------


def stage_spectra(nights: list[Night], lead: str, valid: list[np.ndarray]):
    """Mean log10 PSD (µV²/Hz) per stage of a lead, pooled over nights, 0.5-35 Hz.

    Returns
    -------
    freqs : ndarray, shape (n_freqs,)
    mean : ndarray, shape (5, n_freqs)
        NaN for a stage with fewer than :data:`MIN_EPOCHS` epochs.
    counts : ndarray of int, shape (5,)
    """
    from scipy.signal import welch

    n_per = int(EPOCH_S * SFREQ)
    logs, labels = [], []
    for night, ok in zip(nights, valid):
        n = ok.size
        x = night.leads[lead][: n * n_per].reshape(n, n_per)
        keep = ok & (night.labels[:n] >= 0)
        freqs, pxx = welch(x[keep], SFREQ, nperseg=WELCH_SEG, noverlap=WELCH_SEG // 2, axis=-1)
        logs.append(np.log10(np.maximum(pxx, 1e-12)))
        labels.append(night.labels[:n][keep])
    logs, labels = np.concatenate(logs), np.concatenate(labels)
    band = (freqs >= SPEC_FMIN) & (freqs <= SPEC_FMAX)
    mean = np.full((len(STAGE_NAMES), int(band.sum())), np.nan)
    counts = np.array([np.count_nonzero(labels == s) for s in range(len(STAGE_NAMES))])
    for s in range(len(STAGE_NAMES)):
        if counts[s] >= MIN_EPOCHS:
            mean[s] = logs[labels == s][:, band].mean(0)
    return freqs[band], mean, counts


def band_differences(freqs: np.ndarray, sim: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Return simulated minus real mean log power per stage and band (dB), shape (5, n_bands)."""
    out = np.full((sim.shape[0], len(BANDS)), np.nan)
    for b, (lo, hi) in enumerate(BANDS):
        m = (freqs >= lo) & (freqs < hi)
        out[:, b] = 10.0 * (sim[:, m] - real[:, m]).mean(-1)
    return out


def aperiodic_fit(freqs: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit the aperiodic background per stage and find the peaks above it.

    A line of log10 power against log10 frequency over :data:`SLOPE_FIT`; a peak is the
    largest excess of the spectrum over that line within one of :data:`PEAK_RANGES`.

    Returns
    -------
    slope : ndarray, shape (5,)
        Slope of the line (NaN for a stage with too few epochs).
    peak : ndarray, shape (5, len(PEAK_RANGES), 2)
        Frequency (Hz) and height above the line (dB) of the highest local maximum in each
        range (NaN where the range has none: the flank of a peak outside it).
    """
    m = np.zeros(freqs.size, dtype=bool)
    for lo, hi in SLOPE_FIT:
        m |= (freqs >= lo) & (freqs <= hi)
    slope = np.full(mean.shape[0], np.nan)
    peak = np.full((mean.shape[0], len(PEAK_RANGES), 2), np.nan)
    for s in range(mean.shape[0]):
        if not np.all(np.isfinite(mean[s])):
            continue
        k, c = np.polyfit(np.log10(freqs[m]), mean[s, m], 1)
        slope[s] = k
        excess = 10.0 * (mean[s] - (c + k * np.log10(freqs)))
        local = np.zeros(freqs.size, dtype=bool)
        local[1:-1] = (excess[1:-1] >= excess[:-2]) & (excess[1:-1] >= excess[2:])
        for j, (lo, hi) in enumerate(PEAK_RANGES.values()):
            r = np.flatnonzero((freqs >= lo) & (freqs < hi) & local)
            if r.size:
                best = r[np.argmax(excess[r])]
                peak[s, j] = freqs[best], excess[best]
    return slope, peak


def _peak(fh: np.ndarray) -> str:
    return f"{fh[0]:.1f} Hz {fh[1]:+.1f}" if np.all(np.isfinite(fh)) else "none"


def plot_spectra(spectra: dict, channels: dict, path: Path) -> None:
    """One panel per stage (columns) and lead (rows): real against simulated, dB."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    leads = list(spectra)
    fig, axes = plt.subplots(
        len(leads),
        len(STAGE_NAMES),
        figsize=(17, 3.6 * len(leads)),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    for r, lead in enumerate(leads):
        freqs, real, sim, n_real, n_sim = spectra[lead]
        for s, name in enumerate(STAGE_NAMES):
            ax = axes[r, s]
            ax.plot(freqs, 10 * real[s], color="black", lw=1.4, label=channels["real"][lead])
            ax.plot(freqs, 10 * sim[s], color="tab:red", lw=1.4, label=channels["sim"][lead])
            ax.set_title(f"{name}  (real {n_real[s]}, sim {n_sim[s]} epochs)", fontsize=10)
            ax.grid(alpha=0.3)
            for lo, _ in BANDS[1:]:
                ax.axvline(lo, color="0.85", lw=0.6, zorder=0)
            if s == 0:
                ax.set_ylabel(f"{lead}: log power (dB re µV²/Hz)")
            if r == len(leads) - 1:
                ax.set_xlabel("frequency (Hz)")
            if s == len(STAGE_NAMES) - 1:
                ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(
        "Per-stage mean log power spectra (Welch 4 s): real SC4001 window (black) "
        "vs simulated healthy nights (red)",
        fontsize=11,
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


def describe_bands(diff: np.ndarray) -> list[str]:
    """One text line per stage: simulated above/below/close to real in each band."""
    lines = []
    for s, name in enumerate(STAGE_NAMES):
        if not np.all(np.isfinite(diff[s])):
            lines.append(f"  {name:>2}: too few epochs")
            continue
        parts = []
        for (lo, hi), d in zip(BANDS, diff[s]):
            word = "close" if abs(d) < CLOSE_DB else ("above" if d > 0 else "below")
            parts.append(f"{lo:g}-{hi:g} {word} ({d:+.1f})")
        lines.append(f"  {name:>2}: " + ", ".join(parts))
    return lines


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in r.items()})


def output_dir(arg: str | None, force: bool) -> Path:
    """Return the output directory; refuse to overwrite an earlier run's files without ``force``."""
    out = Path(arg) if arg else Path(tempfile.mkdtemp(prefix="dreamnet-transfer-"))
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: not a directory")
    existing = [n for n in OUT_FILES if (out / n).exists()]
    if existing and not force:
        raise UsageError(f"--out {out}: {existing[0]} exists (use --force to overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--data", type=Path, default=DATA, help=f"folder of {PSG_NAME} (default %(default)s)"
    )
    p.add_argument("--nights", type=int, default=4, help="simulated 8-h nights (default 4)")
    p.add_argument("--hours", type=float, default=8.0, help="length of each simulated night")
    p.add_argument("--quick", action="store_true", help="one simulated 1.5-h night (< 30 s)")
    p.add_argument("--model", help="model name or path (default: the shipped model)")
    p.add_argument("--out", help="output directory (default: a new temporary directory)")
    p.add_argument("--force", action="store_true", help="overwrite files of an earlier run")
    p.add_argument("--seed", type=int, default=SEED_BASE, help="first simulated seed (7100)")
    args = p.parse_args(argv)
    if args.quick:
        args.nights, args.hours = 1, 1.5
    if args.nights < 1:
        raise UsageError(f"--nights must be at least 1, got {args.nights}")
    if not 0.5 <= args.hours <= 24:
        raise UsageError(f"--hours must be within 0.5-24, got {args.hours:g}")
    if args.seed < 0:
        raise UsageError(f"--seed must be non-negative, got {args.seed}")
    return args


def run(args) -> int:
    t0 = time.perf_counter()
    folder = args.data
    if not (folder / PSG_NAME).is_file() or not (folder / HYPNOGRAM_NAME).is_file():
        print(f"real night not found ({folder / PSG_NAME} and {HYPNOGRAM_NAME}): skipped")
        return 0
    try:
        model = resolve_model(args.model)
    except (StagingError, OSError, ValueError) as exc:
        raise UsageError(f"--model {args.model}: {exc}") from None
    out = output_dir(args.out, args.force)
    leads = sim_leads()
    real = load_real(folder)
    print(
        f"real: {folder / PSG_NAME}, window {real.labels.size} epochs, "
        f"leads {real.channels['frontal']} / {real.channels['occipital']} / {real.channels['eog']}"
    )
    seeds = [args.seed + i for i in range(args.nights)]
    sims = [simulate_night(sd, args.hours * 3600.0, leads) for sd in seeds]
    print(
        f"simulated: {args.nights} healthy night(s) of {args.hours:g} h, seeds {seeds}, rendered "
        f"at {SIM_RENDER_SFREQ:g} Hz and resampled to {SFREQ:g} Hz; leads {leads['frontal']} / "
        f"{leads['occipital']} / {leads['eog']}  [{time.perf_counter() - t0:.0f} s]"
    )
    model_name = args.model or "the shipped default model"
    print(f"model: {model_name}; no EMG on either side (the real chin EMG is a 1-Hz envelope)")
    counts = {
        "real": np.bincount(real.labels[real.labels >= 0], minlength=5),
        "sim": sum(np.bincount(n.labels[n.labels >= 0], minlength=5) for n in sims),
    }
    for k, c in counts.items():
        print(
            f"  {k:>4} epochs per stage: " + ", ".join(f"{s} {v}" for s, v in zip(STAGE_NAMES, c))
        )

    # --- shifts -------------------------------------------------------------------------
    feats = {}
    rows = []
    for lead in ("frontal", "occipital"):
        r = night_features(real, lead, model.prior)
        s = [night_features(n, lead, model.prior) for n in sims]
        feats[lead] = (r, s)
        rows += shift_rows(r, s, lead)
    ranked = {sp: rank_shifts(rows, "frontal", sp) for sp in ("input", "raw")}
    rank_of = {
        (lead, sp): {e["feature"]: i + 1 for i, e in enumerate(rank_shifts(rows, lead, sp))}
        for lead in ("frontal", "occipital")
        for sp in ("input", "raw")
    }
    for r in rows:
        r["rank"] = rank_of[(r["lead"], r["space"])].get(r["feature"], "")
    print_shift_table(
        ranked["input"],
        f"Most shifted model inputs, frontal lead ({real.channels['frontal']} real vs "
        f"{leads['frontal']} simulated), SMD = (sim - real) / pooled SD:",
    )
    print_shift_table(ranked["raw"], "Most shifted raw features, frontal lead:", top=10)
    occ = rank_shifts(rows, "occipital", "input")
    print(
        "\nOccipital lead (model inputs), top 5 by mean |SMD|: "
        + ", ".join(f"{e['feature']} {e['mean_abs_smd']:.2f}" for e in occ[:5])
    )

    # --- what the model leans on ----------------------------------------------------------
    real_f, sim_f = feats["frontal"]
    k_real = epoch_agreement(real_f.labels, stage_epochs(real_f.features, model, "offline").stages)
    importance = permutation_importance(sim_f, model, args.seed)
    base = importance["feature"][0]["kappa_base"]
    print(
        f"\nOffline kappa, frontal lead + EOG: simulated nights {base:.3f}, "
        f"real window {k_real[1]:.3f} (accuracy {k_real[0]:.3f}; validation, nothing fitted)"
    )
    both = {kind: combine(rows_k, ranked["input"]) for kind, rows_k in importance.items()}
    print(
        "\nPermutation importance on the simulated nights (one shuffle each): offline kappa drop,"
        " rise of the log loss (mean -ln p of the true stage, nats), and the shift of the most"
        " shifted input it changes:"
    )
    for kind, top in (("family", None), ("feature", TOP)):
        print_importance(
            both[kind][:top], f"{kind} (shuffled together)" if kind == "family" else kind
        )
    ranked_both = sorted(both["feature"], key=lambda e: -e["score"])
    print("\nShifted AND leaned on (mean |SMD| of its most shifted input x log-loss rise):")
    head = "".join(f"{'SMD ' + s:>9}" for s in STAGE_NAMES)
    print(f"  {'rank':>4}  {'feature (group)':<22}{'score':>7}{'loss+':>8}  {'input':<22}{head}")
    for i, e in enumerate(ranked_both[:10], 1):
        print(
            f"  {i:>4}  {e['group']:<22}{e['score']:>7.3f}{e['loss_rise']:>+8.3f}  "
            f"{e['shift_input']:<22}{_cells(e['smd'])}"
        )

    # --- spectra ----------------------------------------------------------------------------
    spectra = {}
    for lead in ("frontal", "occipital"):
        r, s = feats[lead]
        fr, mr, nr = stage_spectra([real], lead, [r.features.valid])
        _, ms, ns = stage_spectra(sims, lead, [p.features.valid for p in s])
        spectra[lead] = (fr, mr, ms, nr, ns)
    png = out / OUT_FILES[2]
    plot_spectra(spectra, {"real": real.channels, "sim": leads}, png)

    # --- files and conclusion -------------------------------------------------------------
    write_csv(out / OUT_FILES[0], rows)
    imp_rows = [
        dict(
            kind=kind,
            group=e["group"],
            kappa_base=e["kappa_base"],
            kappa_shuffled=e["kappa"],
            kappa_drop=e["drop"],
            log_loss_rise=e["loss_rise"],
            inputs=" ".join(e["inputs"]),
            shift_mean_abs_smd=e["shift"],
            shift_input=e["shift_input"],
            score=e["score"],
        )
        for kind, rows_k in both.items()
        for e in rows_k
    ]
    write_csv(out / OUT_FILES[1], imp_rows)

    print("\nConclusion (computed from the numbers above):")
    fam = both["family"]
    print(
        "  The model leans most on the families (log-loss rise, kappa drop): "
        + ", ".join(f"{e['group']} ({e['loss_rise']:+.3f}, {e['drop']:+.3f})" for e in fam[:3])
    )
    top = [e for e in sorted(both["feature"], key=lambda e: -e["score"]) if e["score"] > 0][:5]
    print(
        "  The most shifted features the model leans on (top 5 of |SMD| x log-loss rise), "
        "with their most shifted input:"
    )
    for e in top:
        worst = max(STAGE_NAMES, key=lambda s: abs(e["smd"][s]) if np.isfinite(e["smd"][s]) else -1)
        print(
            f"    {e['group']}: mean |SMD| {e['shift']:.2f} ({e['shift_input']}), "
            f"log-loss rise {e['loss_rise']:+.3f}, kappa drop {e['drop']:+.3f}; "
            f"largest in {worst} (SMD {e['smd'][worst]:+.2f})"
        )
    fr, mr, ms, _, _ = spectra["frontal"]
    diff = band_differences(fr, ms, mr)
    offset = _finite_mean(diff)
    print(
        f"  Frontal spectra, simulated minus real per stage and band (dB; |d| < {CLOSE_DB:g} dB "
        f"is close); overall offset {offset:+.1f} dB (montage and gain):"
    )
    print("\n".join(describe_bands(diff)))
    print("  Same after removing the overall offset (the shape of each stage's spectrum):")
    print("\n".join(describe_bands(diff - offset)))
    (sr, pr), (ss, ps) = aperiodic_fit(fr, mr), aperiodic_fit(fr, ms)
    print(
        "  Aperiodic slope (log-log, 2-7 and 16-30 Hz), real / simulated: "
        + ", ".join(f"{n} {a:.2f} / {b:.2f}" for n, a, b in zip(STAGE_NAMES, sr, ss))
    )
    print(
        "  Largest excess over that background per range, real / simulated (Hz and dB): "
        + ", ".join(f"{k} {lo:g}-{hi:g} Hz" for k, (lo, hi) in PEAK_RANGES.items())
    )
    for n, a, b, ok in zip(STAGE_NAMES, pr, ps, np.isfinite(sr) & np.isfinite(ss)):
        if ok:
            print(
                f"  {n:>2}: "
                + ", ".join(
                    f"{k} {_peak(ra)} / {_peak(rb)}" for k, ra, rb in zip(PEAK_RANGES, a, b)
                )
            )
    print(f"\nwrote {out / OUT_FILES[0]}, {out / OUT_FILES[1]}, {png}")
    print(f"[{time.perf_counter() - t0:.0f} s]")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 done (or no real data), 2 bad input, 1 unexpected."""
    try:
        return run(parse_args(argv))
    except UsageError as exc:
        print(f"transfer.py: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
