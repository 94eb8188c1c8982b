"""Benchmark of dreamnet's numba DSP core against scipy, MNE, BrainFlow and YASA, in one run.

Usage::

    .venv/bin/python benchmarks/dsp.py            # full: a whole 8-h night (~2-3 min)
    .venv/bin/python benchmarks/dsp.py --quick    # 1-h night, fewer repeats (~30 s)
    .venv/bin/dreamnet bench dsp                  # the quick version through the CLI

Workload (DESIGN 5): 8 channels at 256 Hz, 4th-order Butterworth band-pass 0.3-35 Hz + 50-Hz
notch (5 second-order sections). Prints markdown tables: per streamed call at chunks of 1, 8,
32 and 256 samples; a whole night offline (M channel-samples/s and distance to this machine's
ceilings, measured in the same run); band-power features for a night; numba start-up (compile
in a fresh cache, warm process to first filtered chunk, both in subprocesses); peak memory.
Ratios are "reference time / dsp time" measured side by side (best of repeats). Times are the
CPU time of the benchmarking process (``time.process_time``, one thread), so that other load
on a shared machine does not distort them; start-up is reported both as wall and CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from headset.lifeline import child_popen_kwargs  # noqa: E402

FS = 256.0
N_CH = 8
FLOPS_PER_SECTION = 9  # 5 multiplications + 4 additions per sample and section
#: Samples per channel of the in-cache kernel measurement (1 MiB; not a multiple of 512, so
#: that the rows do not all fall in the same cache sets).
IN_CACHE = 16_411
TARGETS = {"stream32": 20.0, "offline": 2.0, "warm_start_s": 1.5}


def _sos():
    import scipy.signal as ss

    return np.vstack(
        [
            ss.butter(4, [0.3, 35.0], "bandpass", fs=FS, output="sos"),
            ss.tf2sos(*ss.iirnotch(50.0, 30.0, fs=FS)),
        ]
    )


_clock = time.process_time


def _per_call(fn, budget_s: float, repeat: int) -> float:
    """Best mean CPU time of one call (s) over ``repeat`` rounds of about ``budget_s`` each."""
    fn()
    t0 = _clock()
    k = 0
    while _clock() - t0 < budget_s / 10 and k < 10**6:
        fn()
        k += 1
    per = (_clock() - t0) / max(k, 1)
    number = max(1, int(budget_s / max(per, 1e-9)))
    best = np.inf
    for _ in range(repeat):
        t0 = _clock()
        for _ in range(number):
            fn()
        best = min(best, (_clock() - t0) / number)
    return best


def _once(fn, repeat: int = 1) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = _clock()
        fn()
        best = min(best, _clock() - t0)
    return best


def _table(title: str, header: list[str], rows: list[list]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines) + "\n"


def _fmt_t(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.2f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


# ------------------------------------------------------------------------------ streaming
def bench_streaming(quick: bool, out: dict) -> str:
    import scipy.signal as ss
    from brainflow.data_filter import DataFilter, FilterTypes

    import dsp

    sos = _sos()
    rng = np.random.default_rng(0)
    budget, repeat = (0.05, 3) if quick else (0.25, 5)
    rows = []
    for n in (1, 8, 32, 256):
        x = np.ascontiguousarray(rng.standard_normal((N_CH, n)) * 20.0)
        filt = dsp.SOSFilter(sos, N_CH)
        t_dsp = _per_call(lambda f=filt, x=x: f(x), budget, repeat)
        state = {"zi": np.zeros((sos.shape[0], N_CH, 2))}

        def scipy_call(x=x, state=state):
            _, state["zi"] = ss.sosfilt(sos, x, zi=state["zi"])

        t_sp = _per_call(scipy_call, budget, repeat)
        buf = x.copy()

        def bf_call(buf=buf):
            for row in buf:
                DataFilter.perform_bandpass(row, 256, 0.3, 35.0, 4, FilterTypes.BUTTERWORTH, 0.0)
                DataFilter.perform_bandstop(row, 256, 48.0, 52.0, 1, FilterTypes.BUTTERWORTH, 0.0)

        t_bf = _per_call(bf_call, budget, repeat)
        rows.append(
            [
                n,
                _fmt_t(t_dsp),
                _fmt_t(t_sp),
                _fmt_t(t_bf),
                f"**{t_sp / t_dsp:.1f}x**",
                f"{t_bf / t_dsp:.1f}x",
                f"{N_CH * n / t_dsp / 1e6:.1f}",
            ]
        )
        out[f"stream{n}"] = {"dsp": t_dsp, "scipy": t_sp, "brainflow": t_bf}
    montage = ["eeg", "eeg", "eeg", "eog", "eog", "emg", "ecg", "misc", "misc", "misc"]
    bank = dsp.FilterBank(montage, FS)
    xb = np.ascontiguousarray(rng.standard_normal((len(montage), 32)) * 20.0)
    t_bank = _per_call(lambda: bank(xb), budget, repeat)
    out["bank32"] = t_bank
    text = _table(
        "Streaming: one call per chunk, 8 channels, 5 sections, state carried",
        [
            "samples/chunk",
            "dsp.SOSFilter",
            "scipy sosfilt(zi)",
            "BrainFlow DataFilter",
            "vs scipy",
            "vs BrainFlow",
            "dsp M ch-samples/s",
        ],
        rows,
    )
    text += (
        f"\nBrainFlow filters each row in place and forgets its state between calls (a start-up "
        f"transient at every chunk edge); dsp and scipy carry it. dsp.FilterBank on the "
        f"headset montage (10 channels: 7 ExG with 5-6 sections, 3 pass-through) at 32 "
        f"samples: {_fmt_t(t_bank)} per call.\n"
    )
    return text


# ------------------------------------------------------------------------------ ceilings
_PEAK_CHAINS = 16  # independent vector chains: enough to hide the latency of mul and add


def _fp_peak_kernel():
    """Build the floating-point probe: ``fp_peak(reps)`` runs independent vector chains.

    ``_PEAK_CHAINS`` chains ``acc = acc * c + d`` on vectors of ``dsp._biquad.LANES`` float64 in
    registers (separate multiply and add, no memory, no FMA: the instruction mix of the biquad
    kernels), ``reps`` times; returns one lane.
    """
    from llvmlite import ir
    from numba import njit, types
    from numba.core import cgutils
    from numba.extending import intrinsic

    from dsp._biquad import LANES

    @intrinsic
    def chains(typingctx, reps):
        def codegen(context, builder, signature, args):
            vty = ir.VectorType(ir.DoubleType(), LANES)
            slots = [cgutils.alloca_once(builder, vty) for _ in range(_PEAK_CHAINS)]
            for k, slot in enumerate(slots):
                builder.store(ir.Constant(vty, [1.0 + k / 64] * LANES), slot)
            c = ir.Constant(vty, [0.999999] * LANES)
            d = ir.Constant(vty, [1e-7] * LANES)
            with cgutils.for_range(builder, args[0]):
                for slot in slots:
                    builder.store(builder.fadd(builder.fmul(builder.load(slot), c), d), slot)
            total = builder.load(slots[0])
            for slot in slots[1:]:
                total = builder.fadd(total, builder.load(slot))
            return builder.extract_element(total, ir.Constant(ir.IntType(32), 0))

        return types.float64(reps), codegen

    @njit(cache=False)
    def fp_peak(reps):
        return chains(reps)

    return fp_peak


def _ceilings(quick: bool) -> dict:
    from numba import njit

    from dsp._biquad import LANES

    fp_peak = _fp_peak_kernel()

    @njit(cache=False)
    def one_chain(x, b0, b1, b2, a1, a2):  # one biquad, one channel: latency bound
        z0 = 0.0
        z1 = 0.0
        for i in range(x.shape[0]):
            xc = x[i]
            y = b0 * xc + z0
            z0 = b1 * xc - a1 * y + z1
            z1 = b2 * xc - a2 * y
            x[i] = y
        return z0

    reps = 2_000_000 if quick else 10_000_000
    fp_peak(1)
    t = _once(lambda: fp_peak(reps), 3)
    flops = 2 * _PEAK_CHAINS * LANES * reps / t
    n = 2_000_000
    chain = np.random.default_rng(1).standard_normal(n)
    one_chain(chain[:10].copy(), 0.1, 0.2, 0.1, -0.5, 0.2)
    t_chain = _once(lambda: one_chain(chain, 0.1, 0.2, 0.1, -0.5, 0.2), 3)
    size = (64 if quick else 256) * 2**20 // 8
    src = np.ones(size)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    t_mem = _once(lambda: np.copyto(dst, src), 3)
    return {
        "flops": flops,
        "mem_bytes": 2 * src.nbytes / t_mem,
        "chain_sections": n / t_chain,
    }


# ------------------------------------------------------------------------------ offline
def bench_offline(quick: bool, out: dict) -> str:
    import mne
    import scipy.signal as ss
    from brainflow.data_filter import DataFilter, FilterTypes

    import dsp

    hours = 1.0 if quick else 8.0
    n = int(hours * 3600 * FS)
    sos = _sos()
    ns = sos.shape[0]
    x = np.random.default_rng(2).standard_normal((N_CH, n)) * 20.0
    size = x.size
    rep = 2 if quick else 3
    dsp.sosfilt(sos, x[:, :1000])
    dsp.sosfiltfilt(sos, x[:, :1000])
    # The first large allocations of a process pay for the kernel's huge pages (~0.1 s of
    # system time per 60 MB here) whoever makes them: warm the allocator up, then take the
    # best of several runs.
    for _ in range(3):
        np.ones((3 * N_CH, n))
    res = {}
    res["dsp.sosfilt"] = _once(lambda: dsp.sosfilt(sos, x), rep)
    res["scipy sosfilt"] = _once(lambda: ss.sosfilt(sos, x), rep)
    res["dsp.sosfilt, one channel per call"] = _once(
        lambda: [dsp.sosfilt(sos, x[c]) for c in range(N_CH)], 1
    )
    res["dsp.sosfiltfilt"] = _once(lambda: dsp.sosfiltfilt(sos, x), rep)
    res["scipy sosfiltfilt"] = _once(lambda: ss.sosfiltfilt(sos, x), rep)
    iir = dict(order=4, ftype="butter", output="sos")
    res["MNE filter_data IIR (band-pass only, zero phase)"] = _once(
        lambda: mne.filter.filter_data(
            x, FS, 0.3, 35.0, method="iir", iir_params=iir, verbose=False
        ),
        1,
    )
    res["MNE filter_data FIR default (band-pass only, zero phase)"] = _once(
        lambda: mne.filter.filter_data(x, FS, 0.3, 35.0, verbose=False), 1
    )

    def brainflow():
        y = x.copy()
        for row in y:
            DataFilter.perform_bandpass(row, 256, 0.3, 35.0, 4, FilterTypes.BUTTERWORTH, 0.0)
            DataFilter.perform_bandstop(row, 256, 48.0, 52.0, 1, FilterTypes.BUTTERWORTH, 0.0)

    res["BrainFlow DataFilter (causal, incl. copy)"] = _once(brainflow, 1)
    ceil = _ceilings(quick)
    t_dsp = res["dsp.sosfilt"]
    rows = []
    for name, t in res.items():
        ref = res["dsp.sosfiltfilt"] if "filtfilt" in name or "zero phase" in name else t_dsp
        rows.append([name, _fmt_t(t), f"{size / t / 1e6:.0f}", f"{t / ref:.2f}x"])
    rate = size / t_dsp
    flop_rate = rate * ns * FLOPS_PER_SECTION
    byte_rate = rate * 16
    # The kernel alone on a block that stays in the L2 cache, output preallocated: what the
    # arithmetic costs without the memory traffic and the fresh output's page faults.
    from dsp import _biquad

    small = np.ascontiguousarray(x[:, :IN_CACHE])
    small_out = np.empty_like(small)
    zeros = np.zeros((N_CH, ns, 2))
    t_small = _per_call(
        lambda: _biquad.sosfilt_offline(sos, small, small_out, zeros.copy(), False), 0.2, rep
    )
    cache_flops = small.size / t_small * ns * FLOPS_PER_SECTION
    out["offline"] = {k: v for k, v in res.items()}
    out["ceilings"] = ceil
    text = _table(
        f"Offline: a whole {hours:g}-h night, {N_CH} channels x {n:,} samples, 5 sections",
        ["implementation", "time", "M ch-samples/s", "time / dsp (same phase)"],
        rows,
    )
    text += (
        f"\nRatios are against dsp.sosfilt for causal rows and dsp.sosfiltfilt for zero-phase "
        f"rows. **dsp.sosfilt is {res['scipy sosfilt'] / t_dsp:.2f}x scipy.sosfilt and "
        f"dsp.sosfiltfilt {res['scipy sosfiltfilt'] / res['dsp.sosfiltfilt']:.2f}x "
        f"scipy.sosfiltfilt** (one core).\n\n"
        f"Ceilings measured in this run: floating point {ceil['flops'] / 1e9:.1f} G flop/s "
        f"(independent vector multiplies and adds in registers, no FMA: the kernel's mix), "
        f"memory {ceil['mem_bytes'] / 1e9:.2f} GB/s "
        f"(copy, read + write), one biquad recurrence on one channel "
        f"{ceil['chain_sections'] / 1e6:.0f} M samples/s (latency bound). dsp.sosfilt runs "
        f"{rate / 1e6:.0f} M ch-samples/s = {flop_rate / 1e9:.2f} G flop/s "
        f"({100 * flop_rate / ceil['flops']:.0f} % of the floating-point ceiling) and "
        f"{byte_rate / 1e9:.2f} GB/s ({100 * byte_rate / ceil['mem_bytes']:.0f} % of the "
        f"memory ceiling); the latency-bound chain alone would give "
        f"{ceil['chain_sections'] / ns / 1e6:.0f} M ch-samples/s for 5 sections, interleaving "
        f"the channels gives {rate / (ceil['chain_sections'] / ns):.1f}x that. The kernel "
        f"alone on a block that stays in cache (8 x {IN_CACHE:,} samples, output "
        f"preallocated, {_fmt_t(t_small)} a call) runs "
        f"{cache_flops / 1e9:.2f} G flop/s, {100 * cache_flops / ceil['flops']:.0f} % of the "
        f"floating-point ceiling: on a whole night the rest goes to memory (the fresh output "
        f"array's page faults and the traffic to RAM).\n"
    )
    return text, x


# ------------------------------------------------------------------------------ band power
def bench_bandpower(quick: bool, x: np.ndarray, out: dict) -> str:
    import scipy.signal as ss
    import yasa

    from dsp import spectral

    per = int(30 * FS)
    ep = spectral.epochs(x, FS)
    n_ep = ep.shape[0]
    bands = [(lo, hi, name) for name, lo, hi in spectral.DEFAULT_BANDS]
    spectral.bandpower(ep[:2], FS)
    spectral.bandpower(ep[:2], FS, method="multitaper")
    res = {}
    res["dsp.spectral.bandpower, Welch (whole night at once)"] = _once(
        lambda: spectral.bandpower(ep, FS), 1
    )
    res["dsp.spectral.bandpower, multitaper NW=4 (whole night)"] = _once(
        lambda: spectral.bandpower(ep, FS, method="multitaper"), 1
    )
    res["dsp.spectral.features (all features, Welch, whole night)"] = _once(
        lambda: spectral.features(ep, FS), 1
    )

    def per_epoch():
        for e in range(n_ep):
            spectral.bandpower(ep[e], FS)

    res["dsp.spectral.bandpower, one call per epoch (incremental)"] = _once(per_epoch, 1)

    def scipy_welch():
        f, p = ss.welch(ep, FS, nperseg=int(4 * FS))
        df = f[1] - f[0]
        return np.stack([p[..., (f >= lo) & (f < hi)].sum(-1) * df for lo, hi, _ in bands], axis=-1)

    res["scipy.signal.welch + band sums (whole night)"] = _once(scipy_welch, 1)

    def yasa_nd():
        f, p = ss.welch(ep, FS, nperseg=int(4 * FS))
        return yasa.bandpower_from_psd_ndarray(p, f, bands=bands)

    res["scipy welch + yasa.bandpower_from_psd_ndarray"] = _once(yasa_nd, 1)
    k = min(n_ep, 20 if quick else 60)

    def yasa_loop():
        for e in range(k):
            yasa.bandpower(ep[e], FS, win_sec=4, bands=bands)

    t_yasa = _once(yasa_loop, 1) * n_ep / k
    res[f"yasa.bandpower, one call per epoch (extrapolated from {k})"] = t_yasa
    base = res["dsp.spectral.bandpower, Welch (whole night at once)"]
    rows = [
        [name, _fmt_t(t), f"{n_ep * N_CH / t:,.0f}", f"{t / base:.2f}x"] for name, t in res.items()
    ]
    out["bandpower"] = res
    return _table(
        f"Band power, 6 bands, {n_ep} epochs x {N_CH} channels x {per} samples",
        ["implementation", "time", "epoch-channels/s", "time / dsp Welch"],
        rows,
    )


# ------------------------------------------------------------------------------ start-up
_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import dsp
t1 = time.perf_counter()
x = np.random.default_rng(0).standard_normal((8, 32))
sos = np.array(json.loads(sys.argv[1]))  # designed by the parent: no scipy.signal import here
y = dsp.SOSFilter(sos, 8)(x)
t2 = time.perf_counter()
wall = time.time()
res = {"import": t1 - t0, "first_chunk": t2 - t1, "wall_first_chunk": wall}
if "--bank" in sys.argv:
    xb = np.random.default_rng(0).standard_normal((10, 32))
    t = time.perf_counter()
    bank = dsp.FilterBank(["eeg"] * 3 + ["eog"] * 2 + ["emg", "ecg"] + ["misc"] * 3, 256.0)
    bank(xb)
    res["bank_first_chunk"] = time.perf_counter() - t
    res["wall_bank"] = time.time()
if "--all" in sys.argv:
    for name, fn in [
        ("sosfilt", lambda: dsp.sosfilt(sos, x)),
        ("resample_poly", lambda: dsp.resample_poly(x, 25, 64)),
        ("hjorth", lambda: dsp.spectral.hjorth(x)),
        ("epoch_quality", lambda: dsp.epoch_quality(x, 256.0)),
    ]:
        t = time.perf_counter(); fn(); res[name] = time.perf_counter() - t
print(json.dumps(res))
"""


def _child(cache: str, *args: str) -> tuple[dict, float]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(_sos().tolist()), *args],
        env=env,
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        check=True,
        **child_popen_kwargs(),
    )
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["cpu_total"] = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    res["launch_to_chunk"] = res["wall_first_chunk"] - start
    if "wall_bank" in res:
        res["launch_to_bank"] = res["wall_bank"] - start
    return res


def bench_startup(quick: bool, out: dict) -> str:
    with tempfile.TemporaryDirectory(prefix="dreamnet-numba-") as cache:
        cold = _child(cache, "--all", "--bank")
        k = 2 if quick else 5
        warm = [_child(cache) for _ in range(k)]
        bank = [_child(cache, "--bank") for _ in range(k)]
    w = {key: min(r[key] for r in warm) for key in warm[0]}
    wb = {key: min(r[key] for r in bank) for key in bank[0]}
    target = TARGETS["warm_start_s"]
    rows = [
        [
            "cold (fresh NUMBA_CACHE_DIR): first SOSFilter chunk (compiles the kernel)",
            _fmt_t(cold["first_chunk"]),
        ],
        [
            "cold: first FilterBank chunk (per-channel coefficients + scipy.signal import)",
            _fmt_t(cold["bank_first_chunk"]),
        ],
        ["cold: first dsp.sosfilt (offline kernel)", _fmt_t(cold["sosfilt"])],
        ["cold: first dsp.resample_poly", _fmt_t(cold["resample_poly"])],
        ["cold: first dsp.spectral.hjorth", _fmt_t(cold["hjorth"])],
        ["cold: first dsp.epoch_quality", _fmt_t(cold["epoch_quality"])],
        ["cold: process launch -> first filtered chunk (wall)", _fmt_t(cold["launch_to_chunk"])],
        ["warm (disk cache): `import numpy, dsp` (wall)", _fmt_t(w["import"])],
        [
            "warm: SOSFilter built + first chunk, kernel loaded from cache (wall)",
            _fmt_t(w["first_chunk"]),
        ],
        [
            f"**warm: process launch -> first filtered chunk, wall** (target < {target} s)",
            f"**{_fmt_t(w['launch_to_chunk'])}**",
        ],
        [
            "**warm: CPU time of that whole process (launch, first chunk, exit)**",
            f"**{_fmt_t(w['cpu_total'])}**",
        ],
        [
            "warm: FilterBank built + first chunk (imports scipy.signal for the design, wall)",
            _fmt_t(wb["bank_first_chunk"]),
        ],
        [
            "warm: process launch -> first FilterBank chunk (wall / process CPU)",
            f"{_fmt_t(wb['launch_to_bank'])} / {_fmt_t(wb['cpu_total'])}",
        ],
    ]
    out["startup"] = {"cold": cold, "warm": w, "warm_bank": wb}
    return _table("Numba start-up (subprocesses; warm = best of several)", ["what", "time"], rows)


# ------------------------------------------------------------------------------ memory
def bench_memory(x: np.ndarray, out: dict) -> str:
    import scipy.signal as ss

    import dsp

    sos = _sos()
    rows = []
    res = {}
    for name, fn in [
        ("dsp.sosfilt", lambda: dsp.sosfilt(sos, x)),
        ("scipy sosfilt", lambda: ss.sosfilt(sos, x)),
        ("dsp.sosfiltfilt", lambda: dsp.sosfiltfilt(sos, x)),
        ("scipy sosfiltfilt", lambda: ss.sosfiltfilt(sos, x)),
    ]:
        tracemalloc.start()
        y = fn()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del y
        res[name] = peak
        rows.append([name, f"{peak / 2**20:.0f} MiB", f"{peak / x.nbytes:.2f}"])
    filt = dsp.SOSFilter(sos, N_CH)
    bank = dsp.FilterBank(["eeg"] * 3 + ["eog"] * 2 + ["emg", "ecg"] + ["misc"] * 3, FS)
    rows.append(["dsp.SOSFilter state (8 ch, 5 sections)", f"{filt._state.nbytes} B", "-"])
    rows.append(["dsp.FilterBank state (10 ch, 6 sections)", f"{bank._state.nbytes} B", "-"])
    out["memory"] = res
    return _table(
        f"Peak memory (tracemalloc) on the night ({x.nbytes / 2**20:.0f} MiB of input)",
        ["call", "peak allocated", "x input size"],
        rows,
    )


def _machine() -> str:
    import numba
    import scipy

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, numpy "
        f"{np.__version__}, scipy {scipy.__version__}, numba {numba.__version__}"
    )


def main(argv=None) -> int:
    """Run the benchmark and print markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1-h night, fewer repeats")
    parser.add_argument("--json", metavar="FILE", help="also write the raw numbers as JSON")
    args = parser.parse_args(argv)
    out: dict = {}
    t0 = time.perf_counter()
    mode = "quick" if args.quick else "full"
    print(f"## dsp benchmark ({mode})\n")
    print(f"Machine: {_machine()}.\n")
    sys.stdout.flush()
    parts = [bench_streaming(args.quick, out)]
    print(parts[-1])
    sys.stdout.flush()
    text, x = bench_offline(args.quick, out)
    print(text)
    sys.stdout.flush()
    print(bench_bandpower(args.quick, x, out))
    sys.stdout.flush()
    print(bench_startup(args.quick, out))
    sys.stdout.flush()
    print(bench_memory(x, out))
    s32 = out["stream32"]["scipy"] / out["stream32"]["dsp"]
    off = out["offline"]["scipy sosfilt"] / out["offline"]["dsp.sosfilt"]
    offff = out["offline"]["scipy sosfiltfilt"] / out["offline"]["dsp.sosfiltfilt"]
    warm = out["startup"]["warm"]["launch_to_chunk"]
    warm_cpu = out["startup"]["warm"]["cpu_total"]

    def ok(flag):
        return "met" if flag else "NOT met"

    summary = _table(
        "Summary against the targets (DESIGN 5)",
        ["target", "measured", "status"],
        [
            [
                "stream, 8 ch x 32 samples: >= 20x scipy sosfilt(zi)",
                f"{s32:.1f}x",
                ok(s32 >= TARGETS["stream32"]),
            ],
            ["offline night: >= 2x scipy sosfilt", f"{off:.2f}x", ok(off >= TARGETS["offline"])],
            [
                "offline night: >= 2x scipy sosfiltfilt",
                f"{offff:.2f}x",
                ok(offff >= TARGETS["offline"]),
            ],
            [
                "warm process launch to first filtered chunk < 1.5 s (wall; process CPU)",
                f"{_fmt_t(warm)}; {_fmt_t(warm_cpu)}",
                ok(warm < TARGETS["warm_start_s"])
                + ("" if warm < TARGETS["warm_start_s"] else f" (CPU: {ok(warm_cpu < 1.5)})"),
            ],
        ],
    )
    print(summary)
    print(f"Total benchmark time {time.perf_counter() - t0:.0f} s.")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
