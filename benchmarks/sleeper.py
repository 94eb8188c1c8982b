"""CPU per simulated bed-hour of the simulated sleeper alone, read as the ward's beds read it.

Usage::

    .venv/bin/python benchmarks/sleeper.py               # 1-h nights, each profile, best of 3
    .venv/bin/python benchmarks/sleeper.py --hours 8 --repeats 1
    .venv/bin/python benchmarks/sleeper.py --quick       # 6-min nights, once

Each profile's sleeper (default montage, 256 Hz, no faults, the ward's seeds are arbitrary) is
read in 5-s chunks (the simulated device's step in the ward and the monitor) until its night
ends. Times are the CPU time of this process (``time.process_time``), best of the repeats, so
that other load on a shared machine does not distort them; the numba kernels are loaded before
timing. Prints a markdown table: CPU seconds per simulated bed-hour, and the real-time factor.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from headset.sleeper import PROFILES, Sleeper  # noqa: E402

READ_S = 5.0  # the simulated device's step (staging.monitor.sources.DEVICE_STEP_S)


def bed_hour_cpu(profile: str, seed: int, hours: float, sfreq: float = 256.0) -> float:
    """CPU seconds per simulated hour of one sleeper read to the end of its night."""
    s = Sleeper(profile, seed, duration_s=hours * 3600.0, sfreq=sfreq)
    step = int(READ_S * sfreq)
    t = time.process_time()
    while not s.done:
        s.read(step)
    return (time.process_time() - t) / hours


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0, help="night length, h (0.1-8)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats per profile (1-20)")
    ap.add_argument("--quick", action="store_true", help="6-min nights, one repeat")
    args = ap.parse_args(argv)
    if args.quick:
        args.hours, args.repeats = 0.1, 1
    if not (0.1 <= args.hours <= 8.0):
        ap.error(f"--hours must be within 0.1-8, got {args.hours}")
    if not (1 <= args.repeats <= 20):
        ap.error(f"--repeats must be within 1-20, got {args.repeats}")
    bed_hour_cpu("healthy", 0, 60.0 / 3600.0)  # load the numba kernels
    print(f"Sleeper alone, {args.hours:g}-h nights read in {READ_S:g}-s chunks, best of "
          f"{args.repeats}\n")  # fmt: skip
    print("| profile | CPU s per bed-hour | x real time |")
    print("|---|---:|---:|")
    for i, profile in enumerate(PROFILES):
        best = min(bed_hour_cpu(profile, 100 + i, args.hours) for _ in range(args.repeats))
        print(f"| {profile} | {best:.3f} | {3600.0 / best:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
