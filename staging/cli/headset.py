"""``dreamnet headset serve``: the simulated headset as a separate process on TCP."""

from __future__ import annotations

import argparse

from ..errors import StagingError
from ._common import add_duration, add_seed, nonnegative_int


def add_parser(subparsers) -> None:
    """Register ``dreamnet headset``."""
    from headset.faults import faults_help

    parser = subparsers.add_parser(
        "headset",
        help="run the simulated headset as a device on the network",
        description="The simulated headset as a separate process.",
    )
    sub = parser.add_subparsers(dest="headset_command", metavar="ACTION")
    sub.required = True
    serve = sub.add_parser(
        "serve",
        help="serve one simulated night over TCP (one client at a time)",
        description=(
            "Serve a simulated night over TCP, bound to 127.0.0.1 unless --host says "
            "otherwise. Prints 'listening on HOST:PORT' once ready and exits when the night "
            "has been sent, or when no client has been served for --idle-timeout seconds. "
            "A client must prove that it holds the pairing key in --key-file (created, "
            "readable by its owner only, if it does not exist) before any sample flows; the "
            "session is then encrypted (ChaCha20-Poly1305) and its commands signed. One "
            "client is served at a time: the newest authenticated one. With --lsl the stream "
            "is published on LSL instead, unencrypted."
        ),
        epilog="faults (--faults name=value,...):\n" + faults_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument(
        "--port", type=nonnegative_int, default=0, help="TCP port (0 picks a free one)"
    )
    add_seed(serve, "the night")
    serve.add_argument(
        "--profile",
        default="healthy",
        help="sleeper profile: healthy, nightmare-prone, insomnia, child (healthy)",
    )
    add_duration(serve, 8 * 3600.0, "length, e.g. 8h, 90m (default 8h)")
    serve.add_argument("--faults", default="", help="simulated faults, e.g. loss=0.01,disconnect=3")
    serve.add_argument("--speed", default="1", help="1 (real time), 60, or max (1)")
    serve.add_argument(
        "--key-file",
        default=None,
        help="pairing key file (hex); created if missing; required for TCP",
    )
    serve.add_argument(
        "--lsl",
        metavar="NAME",
        default=None,
        help="publish the decoded stream as an LSL outlet of this name instead of serving TCP",
    )
    serve.add_argument(
        "--idle-timeout",
        type=float,
        default=60.0,
        help="exit after this many seconds without a client (60; at most 86400)",
    )
    serve.add_argument(
        "--auth-timeout",
        type=float,
        default=5.0,
        help="drop a connection that has not proved the pairing key after this many seconds "
        "(5; at most 60)",
    )
    serve.set_defaults(func=run)


#: Upper bounds of ``--idle-timeout`` (a day) and ``--auth-timeout`` (a minute), seconds.
MAX_IDLE_S = 86_400.0
MAX_AUTH_S = 60.0


def run(args) -> int:
    """Serve the night; return 0 when it has been sent, 1 when the server idled out."""
    import sys
    from pathlib import Path

    from headset.device import Device
    from headset.faults import parse_faults
    from headset.protocol import load_key, new_key, save_key
    from headset.transport import TcpServer, parse_speed

    speed = args.speed
    try:  # a bad --speed stops here, before a key or a device is made
        parse_speed(speed)
    except ValueError as exc:
        raise StagingError(f"--speed: {exc}") from None
    faults = parse_faults(args.faults)
    if not args.lsl and not args.key_file:
        raise StagingError(
            "--key-file is required: a client must prove the pairing key to receive the night"
        )
    for name, hi in (("idle_timeout", MAX_IDLE_S), ("auth_timeout", MAX_AUTH_S)):
        value = getattr(args, name)
        if not 0 < value <= hi:
            raise StagingError(
                f"--{name.replace('_', '-')} must be more than 0 and at most {hi:g} s, got {value}"
            )
    if args.key_file and Path(args.key_file).exists():
        key = load_key(args.key_file)
    else:
        key = new_key()
        if args.key_file:
            save_key(args.key_file, key)
    device = Device.from_profile(args.profile, args.seed, args.duration, faults=faults, key=key)
    if args.lsl:
        return _serve_lsl(device, args.lsl, speed)
    server = TcpServer(
        device,
        args.host,
        args.port,
        speed=speed,
        idle_timeout=args.idle_timeout,
        auth_timeout=args.auth_timeout,
    )
    print(f"listening on {server.host}:{server.port}", flush=True)
    print(
        f"pairing key in {args.key_file}; sessions authenticated and encrypted",
        file=sys.stderr,
        flush=True,
    )
    if not _loopback(args.host):
        print(
            f"warning: --host {args.host} accepts connections from other machines; keep "
            f"{args.key_file} private (it is all that protects the stream)",
            file=sys.stderr,
            flush=True,
        )
    try:
        done = server.serve()
    except KeyboardInterrupt:
        server.stop()
        raise
    c, sc = device.counters, server.counters
    print(
        f"sent {device.position} samples in {c['packets_sent']} packets; "
        f"{c['disconnects']} disconnects; commands ok {c['commands_ok']}, "
        f"rejected {c['commands_rejected']}; sessions {sc['sessions']}, refused keys "
        f"{sc['auth_failures']}, timed out {sc['auth_timeouts']}, rejected frames "
        f"{sc['frames_rejected']}",
        file=sys.stderr,
    )
    return 0 if done else 1


def _loopback(host: str) -> bool:
    """Return True if ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _serve_lsl(device, name: str, speed: str) -> int:
    """Run the device in process and publish the driver's chunks on LSL (raw microvolts)."""
    import sys

    from headset.driver import Headset
    from headset.transport import InProcessTransport, LslOutlet

    hs = Headset(InProcessTransport(device, speed), key=device.key)
    with hs:
        outlet = LslOutlet(name, hs.ch_names, hs.ch_types, hs.sfreq, source_id=f"dreamnet-{name}")
        print(f"publishing LSL stream {name!r}", flush=True)
        print(
            "note: LSL is neither authenticated nor encrypted: anyone on this network can "
            "read the stream",
            file=sys.stderr,
            flush=True,
        )
        n = 0
        for chunk in hs:
            outlet.push(chunk)
            n += chunk.n_samples
        outlet.close()
    print(f"published {n} samples; driver counters {hs.counters}", file=sys.stderr)
    return 0
