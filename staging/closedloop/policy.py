"""Intervention policy: a ladder of cues for a nightmare in progress, with hard safety limits.

The policy turns nightmare alerts into stimulation commands:

- a configurable **ladder** (soft audio cue, stronger cue or vibration, gentle wake); an episode
  starts at ``first_step`` (personalised by the sleeper's profile) and escalates one step when
  the alert persists after ``cooldown_s``, the risk did not fall since the last cue, and (when
  the caller says how old its stage is) a whole epoch after the last cue has been staged;
- **hard limits** that no configuration can lift: never a cue in N3 or W (nor in an unscored
  epoch), at least ``min_interval_s`` between cues, at most ``max_per_hour`` cues in any
  rolling hour and ``max_per_night`` in the session;
- **no cue to a sleeper who may be waking**. The stage is known only at the end of each 30-s
  epoch, so a sleeper who wakes (by herself, or from a cue) still looks asleep for up to a
  minute. Every sign of waking the caller reports (:meth:`InterventionPolicy.wake_sign`: a
  detected arousal, a movement, a chin-EMG burst, an EEG shift; see
  :class:`staging.closedloop.arousal.WakeSign`) therefore stops the ladder, and a cue pending
  (proposed, acknowledged or being retried) is cancelled and logged with the sign as its
  reason. How long it stays stopped depends on when the sign came:

  * **after a cue** of the episode, or while one was pending (the cue may have woken her):
    until **both** ``wake_hold_s`` seconds (60 by default) have passed since the sign **and**
    an epoch that *starts after the sign* has been scored in ``sleep_again_stages`` (N2, N3
    or R by default: never W, and not N1, which the stager confuses with W). With the
    defaults that is at least 60 s, and until the first N2/N3/R epoch wholly after the sign
    is scored (30-60 s after it when she did not wake);
  * **otherwise** (a spontaneous arousal, or the awakening that ends a REM period and looks
    like the start of a nightmare): until an epoch covering at least half an epoch (15 s)
    after the sign has been scored in ``sleep_again_stages`` (15-45 s after the sign when she
    did not wake), so a passing arousal costs the next nightmare little time.

  Without ``stage_as_of`` the policy cannot tell when the given stage was measured and
  assumes it may describe an epoch that ended one epoch before the update;
- **no action on an unsure stage**: an update whose stage ``confidence`` (the online
  stager's largest posterior) is below ``min_confidence`` holds the ladder (``held``, reason
  ``low stage confidence``) and cancels a pending cue;
- a **technician** hook: :meth:`InterventionPolicy.veto` blocks every cue (including retries)
  until lifted, and always wins; with ``require_ack`` each proposed cue waits for
  :meth:`InterventionPolicy.acknowledge`; an optional ``technician`` callable answers proposals
  synchronously (True: go, False: veto this cue, None: no answer yet);
- commands go through a ``send(kind, level, duration_s)`` callable (for the headset:
  ``Headset.send_stimulus``, the authenticated command path), so the policy does not depend on
  the transport. A falsy return value or a :class:`headset.errors.HeadsetError`, ``OSError`` or
  ``TimeoutError`` means *not acknowledged*: the command is retried ``max_retries`` times,
  ``retry_interval_s`` apart, then logged as failed;
- every decision is logged (:attr:`InterventionPolicy.log`) with its reason.

Time is the session clock in seconds (sample index / sfreq), passed by the caller.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass

from dsp.validate import check_option, check_positive, validate_type
from headset.errors import HeadsetError
from headset.stages import EPOCH_S, N1, N2, N3, UNSCORED, R, W, check_stage, stage_name

from ..stager.model import LOW_CONFIDENCE

#: Stages in which a cue is never sent, whatever the configuration.
FORBIDDEN_STAGES = frozenset((W, N3, UNSCORED))
KINDS = ("audio", "vibration", "wake")


@dataclass(frozen=True)
class LadderStep:
    """One rung of the ladder.

    Parameters
    ----------
    kind : {"audio", "vibration", "wake"}
        Stimulus kind.
    level : float
        Intensity, 0-1.
    duration_s : float
        Stimulus length, seconds.
    """

    kind: str
    level: float
    duration_s: float

    def __post_init__(self):
        check_option("kind", self.kind, KINDS)
        lvl = check_positive("level", self.level)
        if lvl > 1:
            raise ValueError(f"level must be in (0, 1], got {self.level!r}.")
        check_positive("duration_s", self.duration_s)


#: Soft audio cue (just above what a sleeper notices), stronger audio cue, vibration, gentle
#: wake.
DEFAULT_LADDER: tuple[LadderStep, ...] = (
    LadderStep("audio", 0.15, 3.0),
    LadderStep("audio", 0.35, 3.0),
    LadderStep("vibration", 0.4, 2.0),
    LadderStep("wake", 0.6, 10.0),
)


@dataclass(frozen=True)
class PolicyConfig:
    """Settings of the intervention policy.

    Parameters
    ----------
    ladder : tuple of LadderStep
        The escalation ladder, softest first.
    first_step : int
        Ladder index an episode starts at.
    allowed_stages : tuple of int
        Stages in which a cue may be sent (N1, N2, R by default); W, N3 and unscored are
        refused whatever this says.
    cooldown_s : float
        Seconds after a cue before the same episode may escalate.
    min_interval_s : float
        Hard minimum seconds between any two cues.
    max_per_hour : int
        Hard maximum of cues in any rolling 60 minutes.
    max_per_night : int
        Hard maximum of cues in the session.
    resolve_s : float
        An episode is over once no alert came for this many seconds (the ladder starts again).
    require_ack : bool
        Each cue waits for the technician's acknowledgement.
    ack_timeout_s : float
        A proposal not acknowledged within this many seconds is dropped.
    max_retries : int
        Retries of a command the device did not acknowledge.
    retry_interval_s : float
        Seconds between retries.
    min_confidence : float
        Lowest stage confidence (the online stager's largest posterior, 0-1) the policy acts
        on; below it the ladder holds. 0 turns the check off. The default, 0.6, was measured
        against the online stager (``staging.stager.online``) on six simulated nightmare-prone
        nights (seeds 7000-7005 cut by ``benchmarks/closed_loop.py``, 467 epochs): every REM
        epoch scored 0.63 or more (median 1.00; 34 epochs of nightmares, all 1.00), so the
        gate never stops a cue there; it acts where the model is unsure (recordings unlike its
        training data). Its errors on those nights scored 0.92-1.00: the gate is no guard
        against a confident mistake (the wake signs are). Re-check after retraining the model.
    wake_hold_s : float
        Minimum seconds between a wake sign that came after a cue (or during a pending one,
        :meth:`InterventionPolicy.wake_sign`) and the next cue.
    sleep_again_stages : tuple of int
        Stages one of which an epoch scored wholly after a wake sign must have before cues
        resume (N2, N3, R by default; W and unscored are refused).
    """

    ladder: tuple[LadderStep, ...] = DEFAULT_LADDER
    first_step: int = 0
    allowed_stages: tuple[int, ...] = (N1, N2, R)
    cooldown_s: float = 30.0
    min_interval_s: float = 20.0
    max_per_hour: int = 6
    max_per_night: int = 12
    resolve_s: float = 120.0
    require_ack: bool = False
    ack_timeout_s: float = 60.0
    max_retries: int = 2
    retry_interval_s: float = 2.0
    min_confidence: float = LOW_CONFIDENCE
    wake_hold_s: float = 60.0
    sleep_again_stages: tuple[int, ...] = (N2, N3, R)

    def __post_init__(self):
        if not self.ladder:
            raise ValueError("ladder must have at least one step.")
        for st in self.ladder:
            validate_type("ladder step", st, LadderStep)
        if not 0 <= int(self.first_step) < len(self.ladder):
            raise ValueError(
                f"first_step must be 0..{len(self.ladder) - 1}, got {self.first_step!r}."
            )
        bad = set(self.allowed_stages) & FORBIDDEN_STAGES
        if bad:
            names = ", ".join(stage_name(s) for s in sorted(bad))
            raise ValueError(f"allowed_stages may not contain W, N3 or unscored, got {names}.")
        for name in ("cooldown_s", "min_interval_s", "resolve_s", "ack_timeout_s", "wake_hold_s"):
            check_positive(name, getattr(self, name), allow_zero=True)
        if not 0.0 <= check_positive("min_confidence", self.min_confidence, allow_zero=True) < 1:
            raise ValueError(f"min_confidence must be in [0, 1), got {self.min_confidence!r}.")
        sleep = tuple(self.sleep_again_stages)
        if not sleep or any(s not in (N1, N2, N3, R) for s in sleep):
            raise ValueError(
                "sleep_again_stages must name sleep stages (N1, N2, N3, R; never W or unscored), "
                f"got {self.sleep_again_stages!r}."
            )
        check_positive("retry_interval_s", self.retry_interval_s)
        for name in ("max_per_hour", "max_per_night", "max_retries"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}.")


@dataclass(frozen=True)
class Decision:
    """One logged decision.

    Attributes
    ----------
    t : float
        Session time, seconds.
    action : str
        ``sent``, ``retry``, ``failed``, ``held``, ``proposed``, ``vetoed``, ``cancelled``,
        ``acknowledged``, ``veto``, ``veto lifted``, ``episode start``, ``episode over``,
        ``wake sign`` (the ladder stops), ``resumed`` (the sleeper slept again after it).
    reason : str
        Why, in words.
    kind, level, duration_s : str, float, float or None
        The cue concerned, if any.
    step : int or None
        Its ladder index.
    stage : int or None
        Stage given with the update.
    attempt : int
        Attempt number of a command (1 = first try).
    """

    t: float
    action: str
    reason: str
    kind: str | None = None
    level: float | None = None
    duration_s: float | None = None
    step: int | None = None
    stage: int | None = None
    attempt: int = 0

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        return asdict(self)


@dataclass
class _Command:
    step: int
    cue: LadderStep
    t_first: float
    attempt: int = 0
    next_t: float = 0.0
    risk: float = 0.0


@dataclass
class _Proposal:
    step: int
    cue: LadderStep
    t: float
    risk: float
    acked: bool = False


@dataclass
class _Episode:
    start: float
    last_alert: float
    step: int
    cues: int = 0
    last_cue_t: float | None = None
    last_cue_risk: float = 0.0


class InterventionPolicy:
    """Decide, send and log cues for nightmare alerts (see the module docstring).

    Parameters
    ----------
    send : callable
        ``send(kind, level, duration_s) -> bool``; truthy means the device acknowledged.
    config : PolicyConfig, optional
        Settings (defaults: :class:`PolicyConfig`).
    technician : callable, optional
        ``technician(decision) -> bool | None`` called with each ``proposed`` decision.
    on_decision : callable, optional
        Called with every :class:`Decision` as it is logged (e.g. the monitor's event stream).
    """

    def __init__(
        self,
        send: Callable[[str, float, float], object],
        config: PolicyConfig | None = None,
        *,
        technician: Callable[[Decision], bool | None] | None = None,
        on_decision: Callable[[Decision], None] | None = None,
    ):
        if not callable(send):
            raise TypeError(f"send must be callable, got {type(send).__name__}.")
        self.send = send
        self.config = config if config is not None else PolicyConfig()
        validate_type("config", self.config, PolicyConfig)
        self.technician = technician
        self.on_decision = on_decision
        self.log: list[Decision] = []
        self._sent_times: deque[float] = deque()
        self.n_sent = 0
        self.n_failed = 0
        self._veto_until: float | None = None
        self._vetoed = False
        self._veto_reason = ""
        self._episode: _Episode | None = None
        self._command: _Command | None = None
        self._proposal: _Proposal | None = None
        self._last_key: tuple | None = None
        self._now = 0.0
        # latest wake sign per rule: (time, source); "after a cue" is the strict one
        self._wake: dict[bool, tuple[float, str]] = {}
        self._stage_as_of: float | None = None
        self._confidence: float | None = None

    # ---- technician ------------------------------------------------------------------------
    def veto(self, t: float | None = None, *, until_s: float | None = None, reason: str = ""):
        """Block every cue (and cancel pending ones) until :meth:`lift_veto` or ``until_s``.

        Parameters
        ----------
        t : float, optional
            Session time of the veto, seconds (default: the last update's time).
        until_s : float, optional
            Session time at which the veto lapses by itself.
        reason : str
            The technician's words, logged.
        """
        t = self._now if t is None else float(t)
        self._vetoed = True
        self._veto_until = None if until_s is None else float(until_s)
        self._veto_reason = reason or "technician veto"
        until = "" if until_s is None else f" until t={until_s:.0f} s"
        self._log(t, "veto", f"{self._veto_reason}{until}", force=True)
        if self._command is not None:
            self._log_cue(t, "cancelled", "vetoed by the technician", self._command)
            self._command = None
        if self._proposal is not None:
            p = self._proposal
            self._log(t, "cancelled", "vetoed by the technician", cue=p.cue, step=p.step)
            self._proposal = None

    def lift_veto(self, t: float | None = None) -> None:
        """End a veto."""
        t = self._now if t is None else float(t)
        if self._vetoed:
            self._vetoed = False
            self._veto_until = None
            self._log(t, "veto lifted", "technician lifted the veto", force=True)

    @property
    def vetoed(self) -> bool:
        """True while a veto is in force."""
        return self._vetoed

    def acknowledge(self, t: float | None = None) -> bool:
        """Acknowledge the pending proposal; it is sent at the next update (unless vetoed).

        Returns
        -------
        bool
            True if there was a proposal to acknowledge.
        """
        t = self._now if t is None else float(t)
        if self._proposal is None:
            return False
        self._proposal.acked = True
        p = self._proposal
        self._log(t, "acknowledged", "technician acknowledged", cue=p.cue, step=p.step)
        return True

    def wake_sign(self, t_sign: float, source: str) -> list[Decision]:
        """Report a sign that the sleeper may be waking; the ladder stops (module docstring).

        A cue pending (proposed, acknowledged or being retried) is cancelled at once. After a
        cue of the episode or during a pending one, no cue goes out until ``wake_hold_s`` has
        passed since ``t_sign`` and an epoch starting after it has been scored in
        ``sleep_again_stages``; otherwise, until an epoch covering at least half an epoch
        after ``t_sign`` has.

        Parameters
        ----------
        t_sign : float
            Session time at which the sign began, seconds (it may be reported later: an
            arousal is confirmed once its epoch is scored).
        source : str
            What was seen, e.g. ``arousal``, ``movement``, ``chin EMG burst`` (logged).

        Returns
        -------
        list of Decision
            The decisions logged (the cancellation, the stop), possibly none.
        """
        t_sign = float(t_sign)
        if not math.isfinite(t_sign):
            raise ValueError(f"t_sign must be a finite time in seconds, got {t_sign!r}.")
        n0 = len(self.log)
        ep = self._episode
        strict = self._command is not None or self._proposal is not None
        strict |= ep is not None and ep.last_cue_t is not None and t_sign >= ep.last_cue_t
        old = self._wake.get(strict)
        if old is None or t_sign >= old[0]:
            self._wake[strict] = (t_sign, str(source))
        t = max(self._now, t_sign)
        why = f"{source} at t={t_sign:.0f} s: the sleeper may be waking"
        if self._command is not None:
            self._log_cue(t, "cancelled", why, self._command)
            self._command = None
        if self._proposal is not None:
            p = self._proposal
            self._log(t, "cancelled", why, cue=p.cue, step=p.step)
            self._proposal = None
        if self._episode is not None:
            self._log(t, "wake sign", f"{why}; {self._resume_rule(strict)}", force=True)
        return self.log[n0:]

    def _resume_rule(self, strict: bool) -> str:
        cfg = self.config
        names = "/".join(stage_name(s) for s in cfg.sleep_again_stages)
        if strict:
            return (
                f"no cue for {cfg.wake_hold_s:.0f} s and until an epoch scored after it is {names}"
            )
        return f"no cue until an epoch covering {EPOCH_S / 2:.0f} s after it is {names}"

    @property
    def pending(self) -> Decision | None:
        """The proposal waiting for the technician, as a Decision (None if none)."""
        p = self._proposal
        if p is None:
            return None
        return Decision(p.t, "proposed", "awaiting technician", p.cue.kind, p.cue.level,
                        p.cue.duration_s, p.step)  # fmt: skip

    # ---- main entry --------------------------------------------------------------------------
    def update(
        self,
        t: float,
        stage: int,
        alert=None,
        risk: float | None = None,
        stage_as_of: float | None = None,
        confidence: float | None = None,
    ) -> list[Decision]:
        """Advance the policy to time ``t`` and act on the current alert.

        Parameters
        ----------
        t : float
            Session time, seconds (non-decreasing between calls).
        stage : int
            Current stage estimate (W=0 ... R=4, unscored -1).
        alert : object, optional
            The nightmare alert in force (anything truthy, e.g. a
            :class:`staging.closedloop.nightmare.NightmareAlert`), or None when there is none.
        risk : float, optional
            Current risk (0-1); defaults to ``alert.risk`` when present, used to decide
            escalation (no escalation while the risk falls).
        stage_as_of : float, optional
            Session time (s) at which the epoch described by ``stage`` ended. When given, the
            policy escalates only once a whole epoch scored after the last cue is known: an
            online stager scores an epoch at its end, so right after a cue that woke the
            sleeper the latest stage can still say R. It also tells whether the stage was
            measured after a wake sign (:meth:`wake_sign`).
        confidence : float, optional
            Confidence of ``stage`` (0-1, the stager's largest posterior); below
            ``min_confidence`` the policy does not act. None: not known (not checked).

        Returns
        -------
        list of Decision
            The decisions logged during this update.
        """
        t = float(t)
        if t < self._now:
            raise ValueError(f"time went backwards: t={t} after {self._now}.")
        self._now = t
        n0 = len(self.log)
        stage = check_stage(stage)
        if confidence is not None:
            confidence = float(confidence)
            if not 0.0 <= confidence <= 1.0:
                raise ValueError(f"confidence must be within 0-1, got {confidence!r}.")
        self._confidence = confidence
        self._stage_as_of = None if stage_as_of is None else float(stage_as_of)
        if risk is None:
            risk = float(getattr(alert, "risk", 1.0 if alert else 0.0))
        if self._vetoed and self._veto_until is not None and t >= self._veto_until:
            self._vetoed = False
            self._veto_until = None
            self._log(t, "veto lifted", "veto period ended", force=True)
        self._track_episode(t, stage, alert)
        if self._command is not None:
            self._service_command(t, stage)
        elif self._proposal is not None:
            self._service_proposal(t, stage, risk)
        elif alert:
            self._consider(t, stage, risk, stage_as_of)
        return self.log[n0:]

    # ---- internals ---------------------------------------------------------------------------
    def _log(self, t, action, reason, *, cue=None, step=None, stage=None, attempt=0, force=False):
        key = (action, reason.split(":")[0], step)
        if not force and key == self._last_key and action in ("held", "vetoed"):
            return  # same decision as last time: do not flood the log
        self._last_key = key
        d = Decision(
            t,
            action,
            reason,
            None if cue is None else cue.kind,
            None if cue is None else cue.level,
            None if cue is None else cue.duration_s,
            step,
            stage,
            attempt,
        )
        self.log.append(d)
        if self.on_decision is not None:
            self.on_decision(d)

    def _log_cue(self, t, action, reason, cmd, stage=None):
        self._log(t, action, reason, cue=cmd.cue, step=cmd.step, stage=stage, attempt=cmd.attempt)

    def _track_episode(self, t, stage, alert):
        cfg = self.config
        ep = self._episode
        if alert:
            if ep is None:
                self._episode = _Episode(start=t, last_alert=t, step=cfg.first_step)
                self._log(t, "episode start", "nightmare alert", stage=stage, force=True)
            else:
                ep.last_alert = t
        elif ep is not None and t - ep.last_alert >= cfg.resolve_s:
            self._log(
                t,
                "episode over",
                f"no alert for {cfg.resolve_s:.0f} s after {ep.cues} cue(s); ladder reset",
                stage=stage,
                force=True,
            )
            self._episode = None
            if self._proposal is not None:
                p = self._proposal
                self._log(t, "cancelled", "episode over", cue=p.cue, step=p.step)
                self._proposal = None

    def _unsafe(self, t, stage) -> str | None:
        """Reason the sleeper's state forbids a cue now (stage, confidence, wake sign), or None."""
        cfg = self.config
        if stage in FORBIDDEN_STAGES:
            return f"stage {stage_name(stage)}: never cue in W, N3 or an unscored epoch"
        if stage not in cfg.allowed_stages:
            allowed = ", ".join(stage_name(s) for s in cfg.allowed_stages)
            return f"stage {stage_name(stage)} not in the allowed stages ({allowed})"
        conf = self._confidence
        if conf is not None and conf < cfg.min_confidence:
            return f"low stage confidence: {conf:.2f} < {cfg.min_confidence:.2f}"
        return self._wake_lock(t, stage)

    def _wake_lock(self, t, stage) -> str | None:
        """Reason a wake sign still stops the ladder, or None (and the locks are lifted)."""
        cfg = self.config
        # how much of the epoch behind ``stage`` lies after the sign: the whole epoch for the
        # strict rule, half of it otherwise; without stage_as_of the stage may describe an
        # epoch that ended up to one epoch before t
        end = self._stage_as_of if self._stage_as_of is not None else t - EPOCH_S
        for strict in (True, False):
            if strict not in self._wake:
                continue
            ts, source = self._wake[strict]
            covered = EPOCH_S if strict else EPOCH_S / 2
            held = strict and t - ts < cfg.wake_hold_s
            if held or end - ts < covered or stage not in cfg.sleep_again_stages:
                return f"{source} at t={ts:.0f} s: {self._resume_rule(strict)}"
            del self._wake[strict]
            self._log(t, "resumed", f"epoch scored {stage_name(stage)} after the {source} at "
                      f"t={ts:.0f} s", stage=stage, force=True)  # fmt: skip
        return None

    def _blocked(self, t, stage) -> str | None:
        """Reason a cue may not be sent now, or None."""
        cfg = self.config
        if self._vetoed:
            return f"vetoed: {self._veto_reason}"
        unsafe = self._unsafe(t, stage)
        if unsafe is not None:
            return unsafe
        if self.n_sent >= cfg.max_per_night:
            return f"per-night maximum of {cfg.max_per_night} cues reached"
        while self._sent_times and t - self._sent_times[0] >= 3600.0:
            self._sent_times.popleft()
        if len(self._sent_times) >= cfg.max_per_hour:
            return f"rate limit: {cfg.max_per_hour} cues in the last hour"
        if self._sent_times and t - self._sent_times[-1] < cfg.min_interval_s:
            return f"rate limit: less than {cfg.min_interval_s:.0f} s since the last cue"
        return None

    def _consider(self, t, stage, risk, stage_as_of=None):
        cfg = self.config
        ep = self._episode
        why = self._blocked(t, stage)
        action = "vetoed" if self._vetoed else "held"
        if why is not None:
            self._log(t, action, why, stage=stage)
            return
        if ep.last_cue_t is not None:
            if t - ep.last_cue_t < cfg.cooldown_s:
                self._log(t, "held", f"cooldown: {cfg.cooldown_s:.0f} s after the last cue",
                          stage=stage)  # fmt: skip
                return
            if stage_as_of is not None and stage_as_of - EPOCH_S <= ep.last_cue_t:
                self._log(t, "held", "waiting for the stage of the epoch after the last cue",
                          stage=stage)  # fmt: skip
                return
            if risk < ep.last_cue_risk:
                self._log(
                    t,
                    "held",
                    f"risk falling ({risk:.2f} < {ep.last_cue_risk:.2f} at the last cue): "
                    "no escalation",
                    stage=stage,
                )
                return
        if ep.step >= len(cfg.ladder):
            self._log(t, "held", "ladder exhausted for this episode", stage=stage)
            return
        cue = cfg.ladder[ep.step]
        if cfg.require_ack or self.technician is not None:
            self._proposal = _Proposal(ep.step, cue, t, risk)
            reason = "awaiting technician acknowledgement"
            self._log(t, "proposed", reason, cue=cue, step=ep.step, stage=stage, force=True)
            if self.technician is not None:
                answer = self.technician(self.log[-1])
                if answer is True:
                    self.acknowledge(t)
                elif answer is False:
                    self._log(t, "cancelled", "technician declined this cue", cue=cue,
                              step=ep.step, stage=stage)  # fmt: skip
                    self._proposal = None
                    ep.last_cue_t = t  # wait a cooldown before proposing again
                    ep.last_cue_risk = risk
                    return
            if self._proposal is not None and self._proposal.acked:
                self._service_proposal(t, stage, risk)
            return
        self._start_command(t, stage, ep.step, cue, risk)

    def _service_proposal(self, t, stage, risk):
        p = self._proposal
        if not p.acked:
            if t - p.t >= self.config.ack_timeout_s:
                self._log(t, "cancelled", "no acknowledgement in time", cue=p.cue, step=p.step)
                self._proposal = None
            return
        why = self._blocked(t, stage)
        if why is not None:
            self._log(t, "cancelled", why, cue=p.cue, step=p.step, stage=stage)
            self._proposal = None
            return
        self._proposal = None
        self._start_command(t, stage, p.step, p.cue, risk)

    def _start_command(self, t, stage, step, cue, risk):
        ep = self._episode
        cmd = _Command(step=step, cue=cue, t_first=t, risk=risk)
        # the cue counts against the limits from its first attempt on (the device may have
        # executed a command whose acknowledgement was lost)
        self._sent_times.append(t)
        self.n_sent += 1
        if ep is not None:
            ep.cues += 1
            ep.last_cue_t = t
            ep.last_cue_risk = risk
            ep.step = step + 1
        self._command = cmd
        self._attempt(t, stage)

    def _attempt(self, t, stage):
        cmd = self._command
        cmd.attempt += 1
        error = ""
        try:
            ok = bool(self.send(cmd.cue.kind, cmd.cue.level, cmd.cue.duration_s))
        except (HeadsetError, OSError, TimeoutError) as exc:
            ok = False
            error = f": {exc}"
        if ok:
            why = f"ladder step {cmd.step + 1}/{len(self.config.ladder)} for a nightmare alert"
            if cmd.attempt > 1:
                why += f" (acknowledged on attempt {cmd.attempt})"
            self._log_cue(t, "sent", why, cmd, stage)
            self._command = None
            return
        if cmd.attempt > self.config.max_retries:
            self.n_failed += 1
            self._log_cue(
                t, "failed", f"not acknowledged after {cmd.attempt} attempt(s){error}", cmd, stage
            )
            self._command = None
            return
        cmd.next_t = t + self.config.retry_interval_s
        self._log_cue(
            t,
            "retry",
            f"not acknowledged{error}; retry {cmd.attempt}/{self.config.max_retries} "
            f"in {self.config.retry_interval_s:g} s",
            cmd,
            stage,
        )

    def _service_command(self, t, stage):
        cmd = self._command
        if t < cmd.next_t:
            return
        if self._vetoed:
            self._log_cue(t, "cancelled", f"vetoed: {self._veto_reason}", cmd, stage)
            self._command = None
            return
        unsafe = self._unsafe(t, stage)
        if unsafe is not None:
            self._log_cue(t, "cancelled", unsafe, cmd, stage)
            self._command = None
            return
        self._attempt(t, stage)
