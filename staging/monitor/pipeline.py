"""The processing chain of a monitored session, binding the project's components together.

``Pipeline.process(chunk)`` runs one block of samples through

1. the filter bank (:class:`dsp.filterbank.FilterBank`): the signals the view shows and the
   block-level quality check (the stager and the detectors take the raw chunk and filter their
   own bands: why is in :mod:`staging.closedloop.stream`);
2. the online stager (:class:`staging.stager.online.OnlineStager`, fed raw chunks: it selects and
   filters its own channels), whose estimates also go to
3. the arousal detector (:class:`staging.closedloop.arousal.ArousalDetector`, AASM rule,
   stage-gated), whose wake signs (arousals, movements, chin-EMG bursts, EEG shifts) stop the
   policy's ladder (:meth:`staging.closedloop.policy.InterventionPolicy.wake_sign`),
4. the nightmare detector (:mod:`staging.closedloop.nightmare`) and the heart rate (:mod:`dsp.ecg`),
5. the intervention policy (:class:`staging.closedloop.policy.InterventionPolicy`) in technician
   mode: every cue is *proposed* first; the session approves it when its grace period passes without
   a veto (``approve``) or cancels it on a veto (``veto``), and the policy sends it through the
   source's authenticated command path with its own retries and hard limits. It is given the
   stage's confidence and does not act on an unsure epoch.

It returns what they concluded as a :class:`~staging.monitor.session.StepOutput`. A component
that cannot be built (no model, module missing) is listed in :attr:`Pipeline.missing`, shown by
the view and written in the event stream, rather than invented.
"""

from __future__ import annotations

import math

import numpy as np

from headset.chunk import Chunk, StreamInfo
from headset.stages import EPOCH_S, UNSCORED, W

from ..checks import check_stream
from .session import StepOutput, cue_text

#: Seconds after a cue at which its outcome is judged (awake by then: ``woke``).
OUTCOME_WINDOW_S = 120.0


class PolicyHook:
    """The intervention policy as the monitor drives it: decisions as dicts, approve and veto.

    Parameters
    ----------
    send : callable
        ``send(kind, level, duration_s) -> (acknowledged, outcome, attempts)``; may raise
        :class:`headset.errors.HeadsetError` (the policy retries, then logs a failure).
    config : staging.closedloop.policy.PolicyConfig or None
        Policy settings; ``require_ack`` is forced on (the monitor's grace period approves).
    grace_s : float
        The session's grace period, seconds (the policy's acknowledgement timeout is set
        well beyond it).
    """

    def __init__(self, send, config=None, grace_s: float = 10.0):
        import dataclasses

        from staging.closedloop.policy import InterventionPolicy, PolicyConfig

        config = config if config is not None else PolicyConfig()
        config = dataclasses.replace(
            config, require_ack=True, ack_timeout_s=max(config.ack_timeout_s, grace_s + 30.0)
        )
        self._send = send
        self._decisions: list[dict] = []
        self._last_outcome = ""
        self.policy = InterventionPolicy(self._send_cue, config, on_decision=self._collect)

    def _send_cue(self, kind, level, duration_s):
        ok, outcome, attempts = self._send(kind, level, duration_s)
        self._last_outcome = outcome
        return ok

    def _collect(self, decision) -> None:
        d = decision.to_dict()
        if d["action"] == "sent":
            d["outcome"] = self._last_outcome
        if not d.get("attempt"):
            d.pop("attempt", None)
        self._decisions.append(d)

    def _drain(self) -> list[dict]:
        out, self._decisions = self._decisions, []
        return out

    def update(
        self,
        t: float,
        stage: int,
        alert=None,
        risk: float | None = None,
        stage_as_of: float | None = None,
        confidence: float | None = None,
    ) -> list[dict]:
        """Advance the policy to session time ``t``; return the decisions taken.

        ``stage_as_of`` is the end (s) of the epoch that ``stage`` describes, so the policy
        does not escalate on a stage scored before its last cue took effect; ``confidence``
        is the stager's (0-1).
        """
        self.policy.update(t, stage, alert, risk, stage_as_of=stage_as_of, confidence=confidence)
        return self._drain()

    def wake_sign(self, t_sign: float, source: str) -> list[dict]:
        """Report a sign of waking (the ladder stops); return the decisions taken."""
        self.policy.wake_sign(t_sign, source)
        return self._drain()

    def approve(self, t: float) -> list[dict]:
        """Approve the pending proposal (sent at the next update)."""
        self.policy.acknowledge(t)
        return self._drain()

    def veto(self, t: float) -> list[dict]:
        """Cancel the pending proposal; no cue for the policy's cooldown after it."""
        until = t + max(self.policy.config.cooldown_s, 1.0)
        self.policy.veto(t, until_s=until, reason="technician veto")
        return self._drain()

    def hold(self, t: float, until_s: float, reason: str) -> list[dict]:
        """Cancel any pending cue and send none until ``until_s`` (a veto not by the technician).

        A veto already in force that lasts longer is kept.
        """
        if not self.policy.vetoed:
            self.policy.veto(t, until_s=until_s, reason=reason)
        return self._drain()


class Pipeline:
    """Filter bank -> online stager -> arousal / nightmare detectors -> intervention policy.

    Parameters
    ----------
    info : headset.chunk.StreamInfo
        The source's stream (rate, channels): every component is built for it, and every
        chunk is checked against it (:func:`staging.checks.check_stream`).
    send : callable or None
        ``send(kind, level, duration_s) -> (ok, outcome, attempts)``: the source's command
        path. None: no intervention policy (nothing can be sent).
    sleeper_profile : str or path-like or None
        The sleeper's JSON profile (created at the end if missing); None: population defaults.
    grace_s : float
        The session's grace period for vetoes, seconds.
    mains : float
        Mains frequency for the notch, Hz.
    """

    def __init__(
        self,
        info: StreamInfo,
        *,
        send=None,
        sleeper_profile=None,
        grace_s: float = 10.0,
        mains: float = 50.0,
    ):
        self.info = check_stream("monitor", info)
        self.missing: list[str] = []
        self.notes: list[str] = []
        self.stage = UNSCORED
        self.confidence: float | None = None
        self._stage_as_of: float | None = None
        self.mains = mains
        self.t = 0.0
        self._epochs: list[tuple[int, bool]] = []  # per scored epoch: stage, alert in force
        self._cues: list[dict] = []  # sent cues waiting for / with their outcome
        self._n_arousals = 0
        self._alert = None

        from staging.closedloop.profile import SleeperProfile

        self.profile = SleeperProfile.load_or_default(sleeper_profile)
        self.profile_path = sleeper_profile
        self.notes.append(self.profile.notice)

        self.bank = _try(self.missing, "filter bank", lambda: _filter_bank(info, mains))
        self.stager = _try(self.missing, "online stager", lambda: _online_stager(info))
        self.arousal = _try(self.missing, "arousal detector", lambda: _arousal(info))
        if self.arousal is not None:
            self.notes.extend(self.arousal.missing)
        self.ecg = next((i for i, t in enumerate(info.ch_types) if t == "ecg"), None)
        self.nightmare = _try(
            self.missing, "nightmare detector", lambda: _nightmare(info, self.profile)
        )
        if self.nightmare is not None:
            self.notes.extend(f"nightmare evidence missing: {m}" for m in self.nightmare.missing)
        # heart rate for the view: the nightmare detector's tracker, else one of our own
        self.hr = getattr(self.nightmare, "hr", None)
        self._own_hr = False
        if self.ecg is None:
            self.notes.append("no ECG channel: no heart rate")
        elif self.hr is None:
            self.hr = _try(self.missing, "heart rate", lambda: _hr(info))
            self._own_hr = self.hr is not None
        self.policy = None
        if send is None:
            self.notes.append("no command path: interventions cannot be sent")
        else:
            self.policy = _try(
                self.missing, "intervention policy", lambda: self._policy(send, grace_s)
            )

    def _policy(self, send, grace_s):
        from staging.closedloop.policy import PolicyConfig

        cfg = PolicyConfig()
        step, why = self.profile.first_step(cfg.ladder)
        if step:
            import dataclasses

            cfg = dataclasses.replace(cfg, first_step=step)
        self.notes.append(f"intervention ladder starts at step {step + 1}: {why}")
        return PolicyHook(send, cfg, grace_s)

    # ------------------------------------------------------------------ processing
    def display(self, data: np.ndarray) -> np.ndarray:
        """Filter a frame for the view (the standard chain; streaming, chunk-invariant).

        Parameters
        ----------
        data : ndarray, shape (n_channels, n_samples)
            Raw microvolts.

        Returns
        -------
        ndarray, shape (n_channels, n_samples)
            Filtered microvolts (the raw data when no filter bank is available).
        """
        return self.bank(data) if self.bank is not None else data

    def process(self, chunk: Chunk) -> StepOutput:
        """Run one block through the chain.

        Parameters
        ----------
        chunk : Chunk
            Raw samples from the source (microvolts), consecutive with the previous block.

        Returns
        -------
        StepOutput
            Stage estimates, arousals, alerts, policy decisions, heart rate.
        """
        check_stream("monitor", chunk.info, self.info)
        out = StepOutput()
        t_end = chunk.stop_sample / chunk.sfreq
        self.t = t_end
        if self.stager is not None:
            for est in self.stager.push(chunk):
                out.stages.append(est)
                self.stage = int(est.stage)
                self.confidence = float(est.confidence)
                self._stage_as_of = float(est.onset_s) + EPOCH_S
                if self.arousal is not None:
                    self.arousal.set_stage(est.epoch, est.stage)
                if self.nightmare is not None:
                    self.nightmare.set_stage(est.epoch, est.stage)
                self._epochs.append((int(est.stage), self._alert is not None))
        signs = []
        if self.arousal is not None:
            for ev in self.arousal.push(chunk):
                out.arousals.append(ev)
                self._n_arousals += 1
            signs = self.arousal.take_signs()
        if self.nightmare is not None:
            for al in self.nightmare.push(chunk):
                out.alerts.append(al)
            out.nightmare_risk = float(self.nightmare.risk)
            self._alert = self.nightmare.active_alert
        if self.hr is not None:
            if self._own_hr:
                self.hr.push(chunk.data[self.ecg], chunk.flags[self.ecg], chunk.first_sample)
            rate = self.hr.rate_bpm(10.0)
            if math.isfinite(rate):
                out.heart_rate = rate
        if self.policy is not None:
            for sign in signs:
                out.decisions.extend(self.policy.wake_sign(sign.t, sign.source))
            risk = out.nightmare_risk
            out.decisions.extend(
                self.policy.update(
                    t_end,
                    self.stage,
                    self._alert,
                    risk,
                    stage_as_of=self._stage_as_of,
                    confidence=self.confidence,
                )
            )
            for d in out.decisions:
                if d["action"] == "sent":
                    self._cues.append({"t": d["t"], "kind": d["kind"], "level": d["level"],
                                       "outcome": None})  # fmt: skip
        self._judge_cues(out)
        return out

    def _judge_cues(self, out: StepOutput) -> None:
        """Judge each sent cue from what the monitor saw: woke, settled or no effect."""
        for cue in self._cues:
            if cue["outcome"] is not None:
                continue
            if self.t - cue["t"] < 1.0:
                continue
            first = int((cue["t"]) // EPOCH_S)
            later = [stage for stage, _ in self._epochs[first:]]
            if W in later:
                cue["outcome"] = "woke"
            elif self.t - cue["t"] >= OUTCOME_WINDOW_S:
                cue["outcome"] = "no effect" if self._alert else "settled"
            if cue["outcome"] is not None:
                out.notes.append(
                    {
                        "type": "cue_outcome",
                        "log": f"cue {cue_text(cue['kind'], cue['level'])}: {cue['outcome']}",
                        "kind": cue["kind"],
                        "level": cue["level"],
                        "sent_t": cue["t"],
                        "outcome": cue["outcome"],
                    }
                )

    def flush(self) -> StepOutput:
        """End of the session: release what the detectors still hold."""
        out = StepOutput()
        if self.arousal is not None:
            for ev in self.arousal.flush():
                out.arousals.append(ev)
                self._n_arousals += 1
        return out

    # ------------------------------------------------------------------ technician
    def approve(self, t: float) -> list[dict]:
        """Approve the pending cue (technician or grace period); return the decisions."""
        return self.policy.approve(t) if self.policy is not None else []

    def veto(self, t: float) -> list[dict]:
        """Veto the pending cue; return the decisions."""
        return self.policy.veto(t) if self.policy is not None else []

    def hold(self, t: float, until_s: float, reason: str) -> list[dict]:
        """Hold every cue until ``until_s`` (e.g. a room disturbance); return the decisions."""
        return self.policy.hold(t, until_s, reason) if self.policy is not None else []

    # ------------------------------------------------------------------ end of night
    def night_summary(self):
        """Summarise what tonight taught about the sleeper (for the profile update).

        Returns
        -------
        staging.closedloop.profile.NightSummary
            Calm-REM heart rate and chin-EMG tone, arousal index, cue outcomes.
        """
        from staging.closedloop.profile import NightSummary

        base = self.nightmare.baselines() if self.nightmare is not None else {}
        sleep_h = sum(1 for stage, _ in self._epochs if stage in (1, 2, 3, 4)) * EPOCH_S / 3600
        return NightSummary(
            rem_hr_bpm=base.get("rem_hr_bpm"),
            rem_rmssd_ms=base.get("rem_rmssd_ms"),
            rem_emg_uv=base.get("rem_emg_uv"),
            arousal_index=self._n_arousals / sleep_h if sleep_h >= 1.0 else None,
            cue_outcomes=[
                (c["kind"], c["level"], c["outcome"]) for c in self._cues if c["outcome"]
            ],
        )


def _try(missing: list[str], what: str, build):
    """Build a component; when the stream cannot feed it or its model is missing, note why.

    Only the project's own input errors (and a model file that cannot be read) are noted; a
    failing import or a programming error is raised, with its traceback.
    """
    from staging.errors import StagingError

    try:
        return build()
    except (StagingError, OSError) as exc:
        missing.append(f"{what} ({_short(exc)})")
        return None


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def _filter_bank(info, mains):
    from dsp.filterbank import FilterBank

    return FilterBank(info.ch_types, info.sfreq, mains=mains)


def _online_stager(info):
    from staging.stager.online import OnlineStager

    return OnlineStager.for_stream(info)


def _arousal(info):
    from staging.closedloop.arousal import ArousalDetector

    return ArousalDetector.for_stream(info)


def _hr(info):
    from dsp.ecg import HeartRateTracker

    check_stream("heart rate", info)
    return HeartRateTracker(info.sfreq, keep_s=60.0)


def _nightmare(info, profile):
    from staging.closedloop.nightmare import NightmareDetector

    return NightmareDetector.for_stream(info, baseline=profile.detector_baseline())


def finishers(opts, pipeline: Pipeline | None = None) -> list:
    """Return the end-of-session actions for the options: the report, then the profile.

    Parameters
    ----------
    opts : staging.monitor.app.MonitorOptions
        The options (``report`` needs ``record``; ``build_session`` sees to that).
    pipeline : Pipeline or None
        The session's pipeline (what tonight taught about the sleeper).

    Returns
    -------
    list of callable
        Each is called with the finished session.
    """
    out = []
    if opts.report is not None:

        def write_report(session):
            from pathlib import Path

            from staging.night.report import build_report

            events = opts.events if opts.events not in (None, "-") else None
            prof = opts.sleeper if opts.sleeper and Path(opts.sleeper).exists() else None
            res = build_report(opts.record, opts.report, events_path=events, sleeper_profile=prof)
            session.report = res

        out.append(write_report)
    if opts.sleeper is not None and pipeline is not None:

        def update_sleeper_profile(session):
            prof = pipeline.profile
            prof.update(pipeline.night_summary())
            prof.save(opts.sleeper)

        out.append(update_sleeper_profile)
    return out
