"""Closed-loop benchmark: nightmare detection, interventions and arousals on simulated nights.

Usage::

    .venv/bin/python benchmarks/closed_loop.py             # 20 nights x 3 arms (~30-40 min)
    .venv/bin/python benchmarks/closed_loop.py --quick     # 2 nights x 3 arms (~3-4 min)
    .venv/bin/python benchmarks/closed_loop.py --nights 30 --jobs 2 --json out.json

Every night is a simulated ``nightmare-prone`` sleeper (``headset.sleeper.Sleeper``, 8 h,
256 Hz, default montage) from seeds **9000 + k**, a range never used while the detectors
were developed (development used seeds below 3000). Each seed is run three times, the *same*
night until the first cue changes it (the closed loop goes through ``Sleeper.apply_cue``):

``none``
    No intervention. Measures nightmare **detection**: an episode (``Nightmare`` annotation,
    onset to end) is detected when an alert comes at or after its onset and before its end
    (the awakening); alerts outside every episode (and the minute after it) are false alerts;
    latency is alert time minus episode onset. The arousal detector is also scored here:
    F1 of detected onsets against the simulator's ``Arousal`` annotations with a 3-s
    tolerance, with the true hypnogram as stage input and with the online stager's.
``smartwatch``
    A heart-rate-and-movement-only policy, as the smartwatch approach (which publishes no
    algorithm; this is our reading of it): vibration 0.5 when the 10-s heart rate exceeds the
    median of the last 10 minutes by 10 bpm while the wrist (accelerometer) is still; 60-s
    cooldown, at most 20 per night. It does not know the sleep stage.
``dreamnet``
    The full pipeline: online stager (``staging.stager.online.OnlineStager``) -> nightmare
    detector (``staging.closedloop.nightmare``) -> intervention policy
    (``staging.closedloop.policy``, default ladder and limits, the stage's confidence, the wake
    signs of ``staging.closedloop.arousal.ArousalDetector`` fed with the online stages) ->
    ``apply_cue``.

Outcomes per arm: nightmare episodes, those ending in an awakening (a W epoch starting within
[end - 30 s, end + 60 s]), the share **resolved without awakening**, all awakenings
(``Awakening`` annotations), cues per night, and cues whose *true* stage was W or N3 (wrong
stage: ``Sleeper.stage_at`` on either side of the sample the cue was delivered at; the
stager's view of that moment does not count). Targets (issue 6): sensitivity >= 95 %,
<= 0.5 false alerts per night, median latency <= 45 s, >= 70 % resolved without awakening for
dreamnet, 0 cues in the wrong stage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED0 = 9000
DURATION_S = 8 * 3600.0
CHUNK = 256  # 1 s per read
TARGETS = {"sensitivity": 0.95, "false_per_night": 0.5, "latency_s": 45.0, "resolved": 0.70}
W, N3 = 0, 3


class SmartwatchPolicy:
    """Heart rate + movement only, no stage (see the module docstring)."""

    def __init__(self, sfreq, ch_names, ch_types):
        from dsp.ecg import HeartRateTracker

        self.fs = sfreq
        self.ecg = ch_names.index("ECG")
        self.acc = [i for i, n in enumerate(ch_names) if n.startswith("ACC")]
        self.hr = HeartRateTracker(sfreq, keep_s=60.0)
        self.hr_hist: list[float] = []
        self.acc_var: list[float] = []
        self.last_cue = -np.inf
        self.n_cues = 0
        self._buf = []
        self._t_next = 5.0

    def push(self, chunk):
        """Feed a chunk; return a (kind, level) cue or None."""
        self.hr.push(chunk.data[self.ecg], chunk.flags[self.ecg], chunk.first_sample)
        if self.acc:
            self._buf.append(np.linalg.norm(chunk.data[self.acc], axis=0))
        t = chunk.stop_sample / self.fs
        if t < self._t_next:
            return None
        self._t_next += 5.0
        mag = np.concatenate(self._buf) if self._buf else np.zeros(1)
        self._buf = []
        moving = False
        if self.acc:
            v = float(np.std(np.diff(mag)))
            self.acc_var.append(v)
            self.acc_var = self.acc_var[-120:]
            moving = v > 3.0 * float(np.median(self.acc_var)) + 1e-9
        hr = self.hr.rate_bpm(10.0)
        if np.isfinite(hr):
            self.hr_hist.append(hr)
            self.hr_hist = self.hr_hist[-120:]  # 10 min of 5-s steps
        if len(self.hr_hist) < 24 or not np.isfinite(hr):
            return None
        base = float(np.median(self.hr_hist))
        if hr > base + 10.0 and not moving and t - self.last_cue >= 60.0 and self.n_cues < 20:
            self.last_cue = t
            self.n_cues += 1
            return ("vibration", 0.5)
        return None


def late_rem_night(seed: int, lead_s: float = 300.0, tail_s: float = 360.0) -> dict | None:
    """Cut a short night around the first planned nightmare of a seed (the safety tests).

    The seed's 8-h ``nightmare-prone`` night is planned (not simulated) and two stretches of
    it are joined: the REM period before the nightmare's (a calm one: the nightmare detector
    learns its REM baseline there, as it would on the whole night) with ``lead_s`` on each
    side, then ``lead_s`` before the nightmare's REM period to ``tail_s`` after the nightmare's
    planned end (the awakening it ends in when no cue changes it). About 50 min instead of
    8 h, with the same stages around the nightmare; the NREM between the two REM periods is
    left out.

    Parameters
    ----------
    seed : int
        Seed of the night.
    lead_s, tail_s : float
        Seconds kept before each REM period and after the nightmare.

    Returns
    -------
    dict or None
        ``hypnogram`` (stage per epoch of the cut) and ``nightmares`` (``[(onset_s,
        duration_s)]`` in the cut's time), keyword arguments of ``Sleeper``; None when the
        seed plans no nightmare after a REM period.
    """
    from headset.sleeper import Sleeper
    from headset.stages import EPOCH_S, R

    night = Sleeper(profile="nightmare-prone", seed=seed, duration_s=DURATION_S)
    hyp = night.hypnogram
    planned = night._plan.nightmare  # the plan's nightmares: ground truth, never simulated
    ends = np.flatnonzero(planned)
    if ends.size == 0:
        return None
    end = int(ends[0])
    onset_s = end * EPOCH_S - float(planned[end])

    def rem_start(k):
        while k > 0 and hyp[k - 1] == R:
            k -= 1
        return k

    nm_rem = rem_start(int(onset_s // EPOCH_S))
    prev_end = nm_rem - 1
    while prev_end >= 0 and hyp[prev_end] != R:
        prev_end -= 1
    if prev_end < 0:
        return None
    lead, tail = int(lead_s // EPOCH_S), int(tail_s // EPOCH_S)
    first = (max(rem_start(prev_end) - lead, 0), prev_end + 1 + lead)
    second = (max(nm_rem - lead, first[1]), min(end + tail, hyp.size))
    cut = second[0] - first[1]  # epochs left out
    return {
        "hypnogram": np.concatenate([hyp[first[0] : first[1]], hyp[second[0] : second[1]]]),
        "nightmares": [(onset_s - (first[0] + cut) * EPOCH_S, float(planned[end]))],
    }


def run_night(
    seed: int,
    arm: str,
    duration_s: float = DURATION_S,
    night: dict | None = None,
    grace_s: float | None = None,
    offset_s: float = 0.0,
) -> dict:
    """Simulate one night in one arm; return its events and outcomes.

    Parameters
    ----------
    seed : int
        Seed of the night.
    arm : {"none", "smartwatch", "dreamnet"}
        What reacts to the night (module docstring).
    duration_s : float
        Length of the night, seconds (ignored with ``night``).
    night : dict, optional
        Keyword arguments of ``Sleeper`` that force the night (e.g. :func:`late_rem_night`).
    grace_s : float, optional
        Run the policy as the monitor does (``staging.monitor.pipeline.PolicyHook``): each
        cue is proposed and goes out once ``grace_s`` seconds pass without a veto. None: the
        policy sends at once.
    offset_s : float
        Seconds of the night that pass before the session starts (the headset was on before
        the monitor): the stager's epochs then start ``offset_s`` after the sleeper's, as a
        real person's changes of state do not wait for the stager's epoch grid. The session
        clock (alerts, cues' ``t``, the policy log, the episodes) starts at the offset. Not
        with ``arm="none"`` (its arousal scoring uses the sleeper's epochs).

    Returns
    -------
    dict
        Events, alerts, cues (each with the true stage on both sides of the sample it was
        delivered at) and outcomes.
    """
    from headset.chunk import Chunk
    from headset.sleeper import Sleeper
    from staging.closedloop.arousal import ArousalDetector
    from staging.closedloop.nightmare import NightmareDetector
    from staging.closedloop.policy import InterventionPolicy
    from staging.stager.online import OnlineStager

    if offset_s and arm == "none":
        raise ValueError("offset_s is for the arms that act; the 'none' arm scores arousals.")
    t0 = time.process_time()
    if night is not None:
        s = Sleeper(profile="nightmare-prone", seed=seed, **night)
    else:
        s = Sleeper(profile="nightmare-prone", seed=seed, duration_s=duration_s)
    fs = s.sfreq
    stager = OnlineStager(ch_names=s.ch_names, ch_types=s.ch_types, sfreq=fs)
    det = NightmareDetector(fs, s.ch_names, s.ch_types)
    latest_stage = -1
    latest_conf = None
    stages = []
    stage_as_of = 0.0
    cues = []
    ar_true = ar_online = None
    if arm == "none":
        ar_true = ArousalDetector(fs, s.ch_names, s.ch_types)
        ar_true.set_hypnogram(s.hypnogram)  # no cue: the plan is what happens
    if arm in ("none", "dreamnet"):
        ar_online = ArousalDetector(fs, s.ch_names, s.ch_types)
    policy = watch = hook = None

    def send(kind, level, duration_s):
        pos = s.position
        # the truth on both sides of the delivery point (the last sample read, the next one)
        truth = (s.stage_at(max(pos - 1, 0)), s.stage_at(min(pos, s.n_samples - 1)))
        outcome = s.apply_cue(kind, level)
        cues.append({"t": (pos - lag) / fs, "kind": kind, "level": level, "outcome": outcome,
                     "true_stage": truth[0], "true_stage_next": truth[1],
                     "policy_stage": latest_stage})  # fmt: skip
        return True

    if arm == "dreamnet" and grace_s is not None:
        from staging.monitor.pipeline import PolicyHook

        hook = PolicyHook(lambda *cue: (send(*cue), "", 1), grace_s=grace_s)
        policy = hook.policy
    elif arm == "dreamnet":
        policy = InterventionPolicy(send)
    elif arm == "smartwatch":
        watch = SmartwatchPolicy(fs, s.ch_names, s.ch_types)
    n_steps = 0
    lag = int(round(offset_s * fs))
    s.read(lag)  # before the session: nobody listens
    while not s.done:
        chunk = s.read(CHUNK)
        chunk = Chunk(chunk.data, chunk.first_sample - lag, fs, chunk.ch_names, chunk.ch_types,
                      chunk.flags, chunk.annotations)  # fmt: skip
        for est in stager.push(chunk):
            latest_stage = est.stage
            latest_conf = est.confidence
            stages.append((int(est.stage), round(float(est.confidence), 3)))
            stage_as_of = est.onset_s + 30.0
            det.set_stage(est.epoch, est.stage)
            if ar_online is not None:
                ar_online.set_stage(est.epoch, est.stage)
        det.push(chunk)
        if ar_true is not None:
            ar_true.push(chunk)
        if ar_online is not None:
            ar_online.push(chunk)
        if policy is not None:
            for sign in ar_online.take_signs():  # the sleeper may be waking: the ladder stops
                policy.wake_sign(sign.t, sign.source)
            if len(det.trace) > n_steps:
                n_steps = len(det.trace)
                t = chunk.stop_sample / fs
                pending = policy.pending
                if hook is not None and pending is not None and t - pending.t >= grace_s:
                    hook.approve(t)  # no veto in the grace period (the monitor's session)
                policy.update(t, latest_stage, det.active_alert, det.risk,
                              stage_as_of=stage_as_of, confidence=latest_conf)  # fmt: skip
        if watch is not None:
            cue = watch.push(chunk)
            if cue is not None:
                send(cue[0], cue[1], 2.0)
    events = s.events
    hyp = s.hypnogram
    episodes = [(a.onset - offset_s, a.onset + a.duration - offset_s)
                for a in events if a.description == "Nightmare"]  # fmt: skip
    w_starts = np.flatnonzero(hyp == W) * 30.0 - offset_s
    woke = [bool(np.any((w_starts >= end - 30.0) & (w_starts <= end + 60.0)))
            for _, end in episodes]  # fmt: skip
    out = {
        "seed": seed,
        "arm": arm,
        "episodes": episodes,
        "episode_woke": woke,
        "alerts": [a.t for a in det.alerts],
        "alert_rising": [a.rising_since for a in det.alerts],
        "cues": cues,
        "awakenings": sum(1 for a in events if a.description == "Awakening"),
        "online_stages": stages,
        "true_hypnogram": [int(x) for x in hyp],
        "cpu_s": time.process_time() - t0,
    }
    if ar_true is not None:
        from staging.closedloop.arousal import match_events

        ar_true.flush()
        ar_online.flush()
        true_on = [a.onset for a in events if a.description == "Arousal"]
        out["arousal_true_stages"] = match_events([e.onset_s for e in ar_true.events], true_on)
        out["arousal_online_stages"] = match_events([e.onset_s for e in ar_online.events], true_on)
    if policy is not None:
        out["policy_log"] = [
            d.to_dict() for d in policy.log if d.kind is not None or d.action == "wake sign"
        ]
    return out


def _job(args):
    return run_night(*args)


def detection(nights: list[dict]) -> dict:
    """Sensitivity, false alerts per night and latency from the 'none' arm."""
    n_ep = hit = false = 0
    lat = []
    for r in nights:
        used = set()
        for on, end in r["episodes"]:
            n_ep += 1
            inside = [a for a in r["alerts"] if on <= a < end]
            if inside:
                hit += 1
                lat.append(inside[0] - on)
                used.add(inside[0])
        for a in r["alerts"]:
            if not any(on <= a < end + 60.0 for on, end in r["episodes"]):
                false += 1
    return {
        "nights": len(nights),
        "episodes": n_ep,
        "detected_before_awakening": hit,
        "sensitivity": hit / n_ep if n_ep else float("nan"),
        "false_alerts": false,
        "false_per_night": false / len(nights) if nights else float("nan"),
        "latency_median_s": float(np.median(lat)) if lat else float("nan"),
        "latency_p90_s": float(np.percentile(lat, 90)) if lat else float("nan"),
        "latency_max_s": float(np.max(lat)) if lat else float("nan"),
    }


def wrong_stage(cue: dict) -> bool:
    """Return True when a cue reached W or N3 by the simulator's truth (either side of it)."""
    return cue["true_stage"] in (W, N3) or cue.get("true_stage_next") in (W, N3)


def outcomes(nights: list[dict]) -> dict:
    """Closed-loop outcomes of one arm."""
    n = len(nights)
    eps = sum(len(r["episodes"]) for r in nights)
    woke = sum(sum(r["episode_woke"]) for r in nights)
    cues = [c for r in nights for c in r["cues"]]
    wrong = sum(1 for c in cues if wrong_stage(c))
    kinds: dict[str, int] = {}
    for c in cues:
        kinds[c["outcome"]] = kinds.get(c["outcome"], 0) + 1
    return {
        "nights": n,
        "nightmares": eps,
        "nightmare_awakenings": woke,
        "resolved_without_awakening": (eps - woke) / eps if eps else float("nan"),
        "awakenings_all": sum(r["awakenings"] for r in nights),
        "cues_per_night": len(cues) / n if n else float("nan"),
        "cues_wrong_stage": wrong,
        "cue_outcomes": kinds,
    }


def arousal_f1(nights: list[dict], key: str) -> dict:
    """F1 of the arousal detector (3-s onset tolerance) over the nights."""
    tp = sum(r[key][0] for r in nights)
    fp = sum(r[key][1] for r in nights)
    fn = sum(r[key][2] for r in nights)
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return {"tp": tp, "fp": fp, "fn": fn, "precision": tp / max(tp + fp, 1),
            "recall": tp / max(tp + fn, 1), "f1": f1}  # fmt: skip


def _mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def main(argv=None) -> int:
    """Run the benchmark and print markdown tables."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 nights instead of 20")
    ap.add_argument("--nights", type=int, default=None, help="number of nights (default 20)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--json", help="also write every result to this JSON file")
    ap.add_argument(
        "--seed0", type=int, default=SEED0, help=f"first seed (default {SEED0}; dev used < 3000)"
    )
    args = ap.parse_args(argv)
    n = args.nights or (2 if args.quick else 20)
    seeds = [args.seed0 + k for k in range(n)]
    arms = ("none", "smartwatch", "dreamnet")
    jobs = [(seed, arm) for seed in seeds for arm in arms]
    t0 = time.time()
    if args.jobs > 1:
        from headset.lifeline import follow_parent

        workers = {"initializer": follow_parent, "initargs": (os.getpid(),)}
        with ProcessPoolExecutor(args.jobs, **workers) as ex:
            results = list(ex.map(_job, jobs))
    else:
        results = [_job(j) for j in jobs]
    wall = time.time() - t0
    by_arm = {a: [r for r in results if r["arm"] == a] for a in arms}
    det = detection(by_arm["none"])
    det_dn = detection(by_arm["dreamnet"])
    outs = {a: outcomes(by_arm[a]) for a in arms}
    f1_true = arousal_f1(by_arm["none"], "arousal_true_stages")
    f1_online = arousal_f1(by_arm["none"], "arousal_online_stages")

    print(f"## Closed loop: {n} nightmare-prone nights (seeds {seeds[0]}-{seeds[-1]}), "
          f"{wall:.0f} s wall\n")  # fmt: skip
    print("### Nightmare detection (no intervention, online stager)\n")
    print("| measure | value | target | met |")
    print("|---|---|---|---|")
    print(f"| episodes | {det['episodes']} | | |")
    print(f"| detected before the awakening | {det['detected_before_awakening']} "
          f"({100 * det['sensitivity']:.1f} %) | >= 95 % | "
          f"{_mark(det['sensitivity'] >= TARGETS['sensitivity'])} |")  # fmt: skip
    print(
        f"| false alerts per night | {det['false_per_night']:.2f} ({det['false_alerts']}) "
        f"| <= 0.5 | {_mark(det['false_per_night'] <= TARGETS['false_per_night'])} |"
    )
    print(
        f"| latency from episode onset, median | {det['latency_median_s']:.1f} s | <= 45 s "
        f"| {_mark(det['latency_median_s'] <= TARGETS['latency_s'])} |"
    )
    print(f"| latency p90 / max | {det['latency_p90_s']:.1f} / {det['latency_max_s']:.1f} s | | |")
    print("\n### Closed loop, three arms on the same seeds\n")
    print(
        "| arm | nightmares | ended in awakening | resolved without awakening | all "
        "awakenings | cues/night | cues in W or N3 |"
    )
    print("|---|---|---|---|---|---|---|")
    for a in arms:
        o = outs[a]
        res = o["resolved_without_awakening"]
        print(f"| {a} | {o['nightmares']} | {o['nightmare_awakenings']} | "
              f"{100 * res:.0f} % | {o['awakenings_all']} | {o['cues_per_night']:.2f} | "
              f"{o['cues_wrong_stage']} |")  # fmt: skip
    o = outs["dreamnet"]
    print(f"\ndreamnet: resolved without awakening {100 * o['resolved_without_awakening']:.0f} % "
          f"(target >= 70 %: {_mark(o['resolved_without_awakening'] >= TARGETS['resolved'])}); "
          f"cues in the wrong stage {o['cues_wrong_stage']} (target 0: "
          f"{_mark(o['cues_wrong_stage'] == 0)}); in-loop detection {det_dn['sensitivity']:.2f}, "
          f"false alerts/night {det_dn['false_per_night']:.2f}.")  # fmt: skip
    for a in ("smartwatch", "dreamnet"):
        print(f"cue outcomes, {a}: {outs[a]['cue_outcomes']}")
    print("\n### Arousal detector vs the simulator's arousals (3-s onset tolerance)\n")
    print("| stage input | TP | FP | FN | precision | recall | F1 |")
    print("|---|---|---|---|---|---|---|")
    for name, f in (("true hypnogram", f1_true), ("online stager", f1_online)):
        print(f"| {name} | {f['tp']} | {f['fp']} | {f['fn']} | {f['precision']:.3f} | "
              f"{f['recall']:.3f} | {f['f1']:.3f} |")  # fmt: skip
    cpu = sum(r["cpu_s"] for r in results)
    print(f"\nCPU: {cpu:.0f} s for {len(results)} simulated nights "
          f"({cpu / len(results):.0f} s per 8-h night incl. the simulation).")  # fmt: skip
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "detection": det,
                    "outcomes": outs,
                    "arousal_f1_true": f1_true,
                    "arousal_f1_online": f1_online,
                    "nights": results,
                },
                indent=1,
                default=float,
            )  # fmt: skip
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
