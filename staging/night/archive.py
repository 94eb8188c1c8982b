"""Score an archive of nights on dask.distributed (``dreamnet score PATH... --out DIR --jobs N``).

One task per night runs :func:`score_night` on a dask worker: a local cluster of single-threaded
worker processes (``--jobs``), or the workers of an existing scheduler (``--scheduler``), which
must read the inputs and write ``DIR`` at the same paths (a shared file system). Each night
gives, under ``DIR`` (the layout mirrors the inputs' folders below their common folder):

- ``NAME.csv``: the hypnogram, byte-identical to ``dreamnet score NAME.edf --out NAME.csv``;
- ``NAME.json``: the night's record: input path, size and sha256, model name and version
  (sha256 of the model's JSON file), scoring options, the CSV's sha256, channels, AASM
  statistics (:func:`staging.night.stats.sleep_statistics`), stage shifts, mean confidence,
  warnings;
- ``NAME.report/`` with ``--report``: the morning report
  (:func:`staging.night.report.build_report`).

and the run writes ``DIR/cohort.csv``, one row per night (:data:`COHORT_COLUMNS`), in the order
the inputs were given, the failed nights included (status ``error`` and the one-line message).

Nothing lost, nothing twice:

- every file is written under a temporary name and renamed once complete
  (:func:`staging.outputs.partial_output`); a night's outputs become visible in the
  order record, report, CSV, so a killed run never leaves a CSV that has no record;
- a worker that dies mid-night has its night run again elsewhere (dask reschedules the tasks of
  a lost worker, ``distributed.scheduler.allowed-failures`` times; the task itself is submitted
  with ``retries=2`` for errors of the file system while writing);
- a night whose record says it was scored from the same input (sha256), model version and
  options, and whose outputs are still those recorded (the CSV's sha256), is skipped; one whose
  outputs exist but differ (another input, model or options, an edited CSV, no record) is
  refused before anything runs, unless ``force``;
- a night that cannot be scored is a row with status ``error``; the others go on.

Worker processes never outlive the run: the local cluster's workers are started by dask's
nanny (in this process) through ``distributed.process.AsyncProcess``, whose child holds a pipe
to the parent and exits at once (``os._exit``) when it closes, ``kill -9`` of the parent
included; a ``dask worker`` command's worker likewise ends with its nanny. The nanny starts
workers from a thread of its own, so :func:`headset.lifeline.follow_parent` (whose Linux
parent-death signal follows the starting *thread*) is not used there.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import hashlib
import json
import math
import os
import re
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import StagingError
from ..outputs import PARTIAL_SUFFIX, check_outputs, partial_output, printable

#: Recording suffixes searched for in directories.
RECORDING_SUFFIXES = (".edf", ".bdf")
#: The run's table, in ``DIR``.
COHORT_FILE = "cohort.csv"
#: Format tag of a night's record (``NAME.json``).
RECORD_FORMAT = "dreamnet-night/1"
#: Columns of ``cohort.csv``: minutes unless named ``_pct`` (stage %: of TST).
COHORT_COLUMNS = (
    "path",
    "sha256",
    "model",
    "model_version",
    "channels",
    "epochs",
    "tst_min",
    "se_pct",
    "sol_min",
    "waso_min",
    "rem_latency_min",
    "W_min",
    "N1_min",
    "N2_min",
    "N3_min",
    "R_min",
    "unscored_min",
    "N1_pct",
    "N2_pct",
    "N3_pct",
    "R_pct",
    "stage_shifts",
    "mean_confidence",
    "status",
    "error",
)
#: Seconds to wait for a first worker on a ``--scheduler``.
WORKER_WAIT_S = 60.0
#: Retries of a night whose task raised (a file-system error while writing its outputs).
TASK_RETRIES = 2
#: dask configuration of the local cluster: workers keep glibc's own malloc trimming.
LOCAL_WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
_PATTERN_CHARS = re.compile(r"[*?\[]")
_SCHEDULER_RE = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")
_MODELS: dict = {}  # per worker process: resolved models by specification


@dataclass(frozen=True)
class NightJob:
    """One night to score: what a worker needs (plain values, absolute paths).

    Attributes
    ----------
    input : str
        The recording, absolute path.
    shown : str
        The recording as the user named it (the ``path`` column).
    csv, record : str
        The hypnogram CSV and the night's record (JSON), absolute paths.
    report : str or None
        The report directory, when ``--report`` is given.
    model : str or None
        Model specification (shipped name, absolute path, or None for the default).
    model_version : str
        sha256 of the model's JSON, as the client resolved it.
    options : dict
        ``mode``, ``eeg``, ``eog``, ``emg``, ``allow_truncated``: what changes the hypnogram.
    """

    input: str
    shown: str
    csv: str
    record: str
    report: str | None
    model: str | None
    model_version: str
    options: dict

    def outputs(self) -> list[Path]:
        """Every output of the night (CSV, record, report directory)."""
        return [Path(p) for p in (self.csv, self.record, self.report) if p is not None]


# ---- inputs and layout -------------------------------------------------------------------
def is_pattern(text: str) -> bool:
    """Return True when ``text`` is a glob pattern (``*``, ``?``, ``[``) naming no file itself."""
    return bool(_PATTERN_CHARS.search(text)) and not os.path.lexists(text)


def expand_paths(paths: list[str]) -> list[Path]:
    """Return the recordings named by files, directories and glob patterns.

    Parameters
    ----------
    paths : list of str
        Files (any suffix), directories (searched recursively for ``.edf``/``.bdf``, sorted)
        and glob patterns (expanded here, ``**`` included, sorted).

    Returns
    -------
    list of Path
        The recordings in the order given, each once (the first naming counts).

    Raises
    ------
    StagingError
        A path that does not exist, a directory or pattern that holds no recording.
    """
    found: list[Path] = []
    for text in paths:
        p = Path(text)
        if p.is_dir():
            hits = sorted(
                f for f in p.rglob("*") if f.suffix.lower() in RECORDING_SUFFIXES and f.is_file()
            )
            if not hits:
                raise StagingError(f"{printable(text)}: no .edf or .bdf file in this directory")
        elif is_pattern(text):
            hits = [Path(f) for f in sorted(glob.glob(text, recursive=True)) if Path(f).is_file()]
            if not hits:
                raise StagingError(f"{printable(text)}: no file matches this pattern")
        elif p.exists():
            hits = [p]
        else:
            raise StagingError(f"{printable(text)}: no such file")
        found.extend(hits)
    seen: set[Path] = set()
    out = []
    for f in found:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def plan(
    recordings: list[Path],
    out_dir: Path,
    *,
    model: str | None,
    model_version: str,
    options: dict,
    report: bool,
) -> list[NightJob]:
    """Return the jobs of the run: each recording's outputs under ``out_dir``.

    The layout under ``out_dir`` mirrors the recordings' folders below their common folder
    (``archive/s01/night.edf`` and ``archive/s02/night.edf`` give ``s01/night.csv`` and
    ``s02/night.csv``).

    Raises
    ------
    StagingError
        Two recordings that would give the same output, a night named like the cohort table,
        an output that is its own input.
    """
    absolute = [f.resolve() for f in recordings]
    root = Path(os.path.commonpath([a.parent for a in absolute]))
    base = out_dir.resolve()
    cohort = base / COHORT_FILE
    jobs: list[NightJob] = []
    owner: dict[Path, Path] = {}
    for shown, a in zip(recordings, absolute):
        stem = base / a.relative_to(root).with_suffix("")
        csv_path = stem.with_name(stem.name + ".csv")
        if csv_path in owner:
            raise StagingError(
                f"{printable(shown)} and {printable(owner[csv_path])} both give "
                f"{printable(csv_path)}: rename one or score them into separate --out dirs"
            )
        if csv_path == cohort:
            raise StagingError(
                f"{printable(shown)}: its hypnogram would be the cohort table {COHORT_FILE}; "
                "move it into a folder"
            )
        owner[csv_path] = shown
        job = NightJob(
            input=str(a),
            shown=str(shown),
            csv=str(csv_path),
            record=str(stem.with_name(stem.name + ".json")),
            report=str(stem.with_name(stem.name + ".report")) if report else None,
            model=model,
            model_version=model_version,
            options=dict(options),
        )
        check_outputs([("--out", o) for o in job.outputs()], [("PATH", shown)], force=True)
        jobs.append(job)
    return jobs


def model_version(model) -> str:
    """Return the version of a staging model: sha256 of its JSON file as :meth:`save` writes it.

    Parameters
    ----------
    model : StagingModel

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    text = json.dumps(model.meta, indent=1, sort_keys=True) + "\n"
    return hashlib.sha256(text.encode()).hexdigest()


def model_spec(spec: str | None) -> str | None:
    """Return ``--model`` as workers must see it: a model file as an absolute path."""
    if spec is None:
        return None
    p = Path(spec)
    if p.with_suffix(".npz").exists() or p.exists():
        return str(p.resolve())
    return spec


def file_sha256(path: str | os.PathLike) -> str:
    """Return the sha256 of a file (read in blocks), 64 hexadecimal digits."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# ---- one night (runs on a worker) --------------------------------------------------------
def _worker_model(job: NightJob):
    """Return the job's model, loaded once per worker process, checked against its version."""
    from ..stager.model import resolve_model

    if job.model not in _MODELS:
        m = resolve_model(job.model)
        _MODELS[job.model] = (m, model_version(m))
    m, version = _MODELS[job.model]
    if version != job.model_version:
        raise StagingError(
            f"the worker's model {m.meta.get('name', '')!r} is version {version[:12]}, not the "
            f"client's {job.model_version[:12]}: install the same dreamnet on every worker"
        )
    return m


def _read_record(path: Path) -> dict | None:
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("format") == RECORD_FORMAT else None


def night_state(job: NightJob) -> tuple[str, dict | str]:
    """Compare a night's existing outputs with what the job would write.

    Returns
    -------
    tuple
        ``("new", "")``: no output exists; ``("done", row)``: the record matches the input's
        sha256, the model version and the options, and every output is there as recorded
        (``row`` is its cohort row); ``("redo", "")``: the record matches but an output is
        missing (it is written again, identical); ``("differs", why)``: outputs exist that
        this job would replace.
    """
    outputs = job.outputs()
    if not any(o.exists() for o in outputs):
        return "new", ""
    rec = _read_record(Path(job.record))
    if rec is None:
        return "differs", "no record of how it was scored"
    try:
        digest = file_sha256(job.input)
    except OSError as exc:
        return "differs", f"cannot read the input: {exc.strerror or exc}"
    if rec.get("input_sha256") != digest:
        return "differs", "scored from another input (sha256)"
    if rec.get("model_version") != job.model_version:
        return "differs", f"scored with another model ({rec.get('model')})"
    if rec.get("options") != job.options:
        return "differs", "scored with other options"
    csv_path = Path(job.csv)
    if csv_path.exists() and file_sha256(csv_path) != rec.get("hypnogram_sha256"):
        return "differs", "the CSV is not the one recorded (edited?)"
    if not csv_path.exists() or (job.report is not None and not Path(job.report).is_dir()):
        return "redo", ""
    return "done", cohort_row(rec)


def night_record(job: NightJob, hyp, digest: str, size: int, csv_digest: str) -> dict:
    """Return the record (``NAME.json``) of a night scored into ``hyp``."""
    from .stats import sleep_statistics, stage_shifts

    scored = hyp.stages >= 0
    mean_conf = float(np.mean(hyp.confidence[scored])) if scored.any() else float("nan")
    return {
        "format": RECORD_FORMAT,
        "input": job.shown,
        "input_sha256": digest,
        "input_bytes": size,
        "model": hyp.model,
        "model_version": job.model_version,
        "options": job.options,
        "hypnogram": Path(job.csv).name,
        "hypnogram_sha256": csv_digest,
        "report": None if job.report is None else Path(job.report).name,
        "channels": hyp.channels,
        "modality": hyp.modality,
        "sfreq": hyp.sfreq,
        "epochs": len(hyp),
        "stage_shifts": stage_shifts(hyp.stages),
        "mean_confidence": None if math.isnan(mean_conf) else round(mean_conf, 4),
        "out_of_distribution": hyp.out_of_distribution,
        "warnings": list(hyp.warnings),
        "stats": sleep_statistics(hyp.stages).to_dict(),
    }


def _channels_text(channels: dict) -> str:
    parts = [f"eeg={channels.get('eeg')}"]
    if channels.get("eog"):
        parts.append("eog=" + "+".join(channels["eog"]))
    if channels.get("emg"):
        parts.append(f"emg={channels['emg']}")
    return "; ".join(parts)


def cohort_row(rec: dict) -> dict:
    """Return the ``cohort.csv`` row of a night's record (status ``ok``)."""
    st = rec["stats"]
    row = {
        "path": rec["input"],
        "sha256": rec["input_sha256"],
        "model": rec["model"],
        "model_version": rec["model_version"],
        "channels": _channels_text(rec["channels"]),
        "epochs": rec["epochs"],
        "tst_min": st["tst_min"],
        "se_pct": st["se_pct"],
        "sol_min": st["sol_min"],
        "waso_min": st["waso_min"],
        "rem_latency_min": st["rem_latency_min"],
        "stage_shifts": rec["stage_shifts"],
        "mean_confidence": rec["mean_confidence"],
        "status": "ok",
        "error": "",
    }
    for k in ("W", "N1", "N2", "N3", "R"):
        row[f"{k}_min"] = st["stage_min"][k]
    row["unscored_min"] = st["stage_min"]["?"]
    for k in ("N1", "N2", "N3", "R"):
        row[f"{k}_pct"] = st["stage_pct_tst"][k]
    return row


def error_row(job: NightJob, message: str, digest: str = "", model: str = "") -> dict:
    """Return the ``cohort.csv`` row of a night that could not be scored."""
    line = " ".join(str(message).split()) or "unknown error"
    for name in (job.shown, job.input, Path(job.input).name):  # the row names the file already
        line = line.removeprefix(f"{name}: ")
    return {
        "path": job.shown,
        "sha256": digest,
        "model": model,
        "model_version": job.model_version,
        "status": "error",
        "error": printable(line),
    }


def _write_report(job: NightJob, tmp_dir: Path) -> None:
    from .report import build_report

    shutil.rmtree(tmp_dir, ignore_errors=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_report(job.input, tmp_dir, allow_truncated=bool(job.options["allow_truncated"]))


def score_night(job: NightJob) -> dict:
    """Score one night and write its outputs (the task run on a worker).

    Returns
    -------
    dict
        The night's cohort row (status ``ok``, or ``error`` with the one-line message when the
        recording cannot be scored).

    Raises
    ------
    OSError
        Outputs that cannot be written (dask retries the task).
    """
    from headset.errors import HeadsetError

    from ..stager.score import score

    try:
        model = _worker_model(job)
        digest = file_sha256(job.input)
        size = os.path.getsize(job.input)
    except (OSError, StagingError) as exc:
        return error_row(job, getattr(exc, "strerror", None) or exc)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the record keeps the scorer's warnings
            hyp = score(
                job.input,
                eeg=job.options["eeg"],
                eog=job.options["eog"],
                emg=job.options["emg"],
                mode=job.options["mode"],
                model=model,
                allow_truncated=bool(job.options["allow_truncated"]),
            )
    except Exception as exc:  # noqa: BLE001 - a bad night is a row; the others go on
        known = isinstance(exc, StagingError | HeadsetError)
        msg = str(exc) if known else f"{type(exc).__name__}: {exc}"
        return error_row(job, msg, digest, str(model.meta.get("name", "")))
    csv_path = Path(job.csv)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    if job.report is not None:  # built first: a night whose report fails shows nothing
        final = Path(job.report)
        tmp_report = final.with_name(final.name + PARTIAL_SUFFIX)
        try:
            _write_report(job, tmp_report)
        except Exception as exc:  # noqa: BLE001 - the night fails as a whole
            shutil.rmtree(tmp_report, ignore_errors=True)
            return error_row(job, f"report: {exc}", digest, hyp.model)
    # visible in this order: record, report, CSV (a killed run leaves no CSV without a record)
    with partial_output(csv_path) as tmp_csv:
        hyp.to_csv(tmp_csv)
        rec = night_record(job, hyp, digest, size, file_sha256(tmp_csv))
        with partial_output(job.record) as tmp_rec:
            tmp_rec.write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        if job.report is not None:
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp_report, final)
    return cohort_row(rec)


# ---- the run (client side) ----------------------------------------------------------------
def scheduler_address(text: str) -> str:
    """Argument type of ``--scheduler``: ``tcp://HOST:PORT`` (any dask protocol)."""
    import argparse

    if not _SCHEDULER_RE.match(text or ""):
        raise argparse.ArgumentTypeError(
            f"expected an address such as tcp://HOST:8786, got {text!r}"
        )
    return text


@contextlib.contextmanager
def dask_client(jobs: int | None, scheduler: str | None):
    """Yield a ``distributed.Client``: of an existing scheduler, else of a local cluster.

    The local cluster's workers start without dask's ``MALLOC_TRIM_THRESHOLD_=65536``
    (:data:`LOCAL_WORKER_CONFIG`): that setting turns off glibc's adaptive mmap threshold, so
    every large array comes from fresh pages and a night costs about 2.4x the CPU (0.42 s ->
    1.0 s for 8 h at 128 Hz, 220,000 page faults).

    Parameters
    ----------
    jobs : int or None
        Single-threaded worker processes of the local cluster (None: the number of cores).
    scheduler : str or None
        Address of an existing scheduler (its workers must see the same paths).

    Raises
    ------
    StagingError
        The scheduler cannot be reached, or no worker joins it within :data:`WORKER_WAIT_S`.
    """
    import logging

    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise StagingError(f"--scheduler {scheduler}: cannot connect: {exc}") from None
        with client:
            try:
                client.wait_for_workers(1, timeout=WORKER_WAIT_S)
            except TimeoutError:
                raise StagingError(
                    f"--scheduler {scheduler}: no worker joined within {WORKER_WAIT_S:g} s"
                ) from None
            yield client
        return
    n = jobs if jobs is not None else default_jobs()
    with (
        dask.config.set(LOCAL_WORKER_CONFIG),
        LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # the scheduler's HTTP server (metrics) starts even so: on a free port, not 8787
            scheduler_kwargs={"dashboard_address": ":0"},
            silence_logs=logging.CRITICAL,  # stderr is the command's: problems are rows
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


def default_jobs() -> int:
    """Return the default ``--jobs``: the cores this process may use (1-64)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(64, n))


class _Progress:
    """Nights done, failed, rate and time left on stderr (a terminal), else nothing."""

    def __init__(self, total: int):
        self.bar = None
        if total < 1 or not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("scoring"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task = self.bar.add_task("scoring", total=total, failed=0, rate="")
        self.t0 = time.monotonic()
        self.done = 0
        self.failed = 0
        self.bar.start()

    def advance(self, ok: bool) -> None:
        if self.bar is None:
            return
        self.done += 1
        self.failed += not ok
        rate = self.done / max(time.monotonic() - self.t0, 1e-9) * 60
        self.bar.update(self.task, advance=1, failed=self.failed, rate=f"{rate:.1f} nights/min")

    def line(self, text: str) -> None:
        """Print one line on stderr (above the bar)."""
        if self.bar is not None:
            self.bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=sys.stderr)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:g}"
    return str(v)


def write_cohort(path: Path, rows: list[dict]) -> None:
    """Write ``cohort.csv`` (atomically): :data:`COHORT_COLUMNS`, one row per night."""
    with partial_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COHORT_COLUMNS)
        for r in rows:
            w.writerow([_fmt(r.get(c)) for c in COHORT_COLUMNS])


@dataclass
class RunSummary:
    """Counts of a run: nights given, scored now, skipped (done before), failed; seconds."""

    nights: int
    scored: int
    skipped: int
    failed: int
    seconds: float

    def line(self, table: Path) -> str:
        """Return the one-line summary printed at the end of the run."""
        rate = self.scored / self.seconds * 60 if self.seconds > 0 and self.scored else 0.0
        return (
            f"{self.nights} nights: {self.scored} scored, {self.skipped} skipped (done before), "
            f"{self.failed} failed in {self.seconds:.1f} s ({rate:.1f} nights/min); "
            f"table: {table}"
        )


def run_archive(
    paths: list[str],
    out_dir: str,
    *,
    jobs: int | None = None,
    scheduler: str | None = None,
    model: str | None = None,
    options: dict,
    report: bool = False,
    force: bool = False,
) -> tuple[RunSummary, list[dict]]:
    """Score every night named by ``paths`` into ``out_dir`` on dask.distributed.

    Parameters
    ----------
    paths : list of str
        Files, directories and glob patterns (:func:`expand_paths`).
    out_dir : str
        Output directory (created).
    jobs : int, optional
        Worker processes of a local cluster (default: the number of cores).
    scheduler : str, optional
        Address of an existing scheduler instead of a local cluster.
    model : str, optional
        ``--model`` (a shipped name or a model file; None: the default model).
    options : dict
        ``mode``, ``eeg``, ``eog``, ``emg``, ``allow_truncated`` as :func:`staging.score` takes.
    report : bool
        Also write each night's morning report.
    force : bool
        Score and replace nights whose outputs exist, whatever they are.

    Returns
    -------
    RunSummary, list of dict
        The counts, and the cohort rows in input order (also written to ``cohort.csv``).

    Raises
    ------
    StagingError
        Bad paths, outputs that exist and differ (without ``force``), no scheduler.
    """
    from ..stager.model import resolve_model

    t0 = time.monotonic()
    out = _out_directory(out_dir)
    recordings = expand_paths(paths)
    spec = model_spec(model)
    version = model_version(resolve_model(spec))
    jobs_ = plan(recordings, out, model=spec, model_version=version, options=options, report=report)
    rows: list[dict | None] = [None] * len(jobs_)
    with dask_client(jobs, scheduler) as client:
        todo = _nights_to_score(client, jobs_, rows, force)
        out.mkdir(parents=True, exist_ok=True)
        _score_nights(client, jobs_, todo, rows)
    write_cohort(out / COHORT_FILE, rows)
    summary = RunSummary(
        nights=len(jobs_),
        scored=len(todo) - sum(rows[i]["status"] != "ok" for i in todo),
        skipped=len(jobs_) - len(todo),
        failed=sum(r["status"] != "ok" for r in rows),
        seconds=time.monotonic() - t0,
    )
    return summary, rows


def _out_directory(out_dir: str) -> Path:
    """Return ``--out`` as a directory path; refuse a file or a ``.csv`` name."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise StagingError(f"--out {printable(out_dir)}: exists and is not a directory")
    if out.suffix.lower() == ".csv":
        raise StagingError(
            f"--out {printable(out_dir)}: scoring an archive writes a directory, not one CSV"
        )
    return out


def _nights_to_score(client, jobs_: list[NightJob], rows: list, force: bool) -> list[int]:
    """Return the indices of the nights to score, sorted; fill ``rows`` of those done before.

    Nights with outputs are checked on the workers (:func:`night_state`): done for the same
    input, model and options is skipped, anything else is scored; outputs that differ are
    refused (one error for all of them) unless ``force``.
    """
    to_check = (
        [] if force else [i for i, j in enumerate(jobs_) if any(o.exists() for o in j.outputs())]
    )
    todo = sorted(set(range(len(jobs_))) - set(to_check))
    if not to_check:
        return todo
    states = client.gather(client.map(night_state, [jobs_[i] for i in to_check], pure=False))
    differ = [(i, why) for i, (state, why) in zip(to_check, states) if state == "differs"]
    if differ:
        i, why = differ[0]
        more = f" (and {len(differ) - 1} more nights)" if len(differ) > 1 else ""
        raise StagingError(
            f"--out {printable(jobs_[i].csv)}: exists and differs: {why}{more}; --force replaces it"
        )
    for i, (state, row) in zip(to_check, states):
        if state == "done":
            rows[i] = row
        else:
            todo.append(i)
    return sorted(todo)


def _score_nights(client, jobs_: list[NightJob], todo: list[int], rows: list) -> None:
    """Score the nights ``todo`` on the cluster into ``rows`` (a failed night is an error row)."""
    from distributed import as_completed

    progress = _Progress(len(todo))
    try:
        futures = {
            client.submit(score_night, jobs_[i], retries=TASK_RETRIES, pure=False): i for i in todo
        }
        for fut in as_completed(futures, loop=client.loop):
            i = futures[fut]
            try:
                row = fut.result()
            except Exception as exc:  # noqa: BLE001 - a lost night is a row, the run goes on
                row = error_row(jobs_[i], f"{type(exc).__name__}: {exc}")
            rows[i] = row
            ok = row["status"] == "ok"
            if not ok:
                progress.line(printable(f"dreamnet: error: {row['path']}: {row['error']}"))
            progress.advance(ok)
    finally:
        progress.stop()


__all__ = [
    "COHORT_COLUMNS",
    "COHORT_FILE",
    "NightJob",
    "RunSummary",
    "cohort_row",
    "dask_client",
    "expand_paths",
    "model_version",
    "night_state",
    "plan",
    "run_archive",
    "score_night",
]
