"""Profiles of the hot paths with py-spy (the dev extras install it), for docs/performance.md.

    python bench/profile_paths.py modbus-sequential 20       # hubgate's master, 20 s
    python bench/profile_paths.py modbus-250 20              # 250 devices read together
    python bench/profile_paths.py ocpp 1000 20 10            # listener, 1,000 stations, 10x rate
    python bench/profile_paths.py cycle 0.1 20               # the gateway, depot-500, 100 ms cycle
    python bench/profile_paths.py cycle 0.1 20 2             # ... its Modbus devices in 2 workers
    python bench/profile_paths.py --out DIR cycle 1.0 30     # the collapsed stacks into DIR

Each runs the same load as its benchmark (bench/test_bench_modbus_transport.py,
bench/test_bench_ocpp.py) with the peers in processes of their own, samples the
process under test (the Modbus client, or the OCPP listener) with
`py-spy record --gil` (samples holding the GIL: CPU, not waits) for the steady window, and prints the top frames by
own time and by inclusive time, as shares of the samples. The collapsed stacks stay
in `<DIR>/hubgate-profile-<case>.txt` (for `flamegraph.pl` or speedscope; DIR: `--out`, else a
new temporary directory of each run, printed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import trio

BENCH = Path(__file__).resolve().parent
TOP = 20


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """Start sampling `pid` for `seconds` into `out` (collapsed stacks)."""
    beside = Path(sys.executable).parent  # the venv's, also when it is not on PATH
    py_spy = shutil.which("py-spy", path=str(beside)) or shutil.which("py-spy") or "py-spy"
    window = ["--duration", str(int(seconds)), "--output", str(out)]
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--gil", "--rate", "500", "--format", "raw", *window],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summary(collapsed: Path) -> str:
    """Top frames by own samples, modules by own samples, frames by inclusive samples,
    as shares of all samples."""
    own: Counter[str] = Counter()
    modules: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_short(f) for f in stack.split(";") if f]
        if not frames:
            continue
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        modules[frames[-1].partition(" (")[2].rstrip(")")] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    lines = [f"{total} samples", "own:"]
    lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in own.most_common(TOP)]
    lines.append("own, by module:")
    lines += [f"  {100 * n / total:5.1f} %  {m}" for m, n in modules.most_common(TOP)]
    lines.append("inclusive:")
    lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in inclusive.most_common(TOP)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    """`read (trio/_core/_run.py:123)` -> `read (trio/_core/_run.py)`: one entry per function."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "python/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def modbus(case: str, seconds: float, out_dir: Path) -> Path:
    """hubgate's master in this process reading in a loop, sampled from outside."""
    sys.path.insert(0, str(BENCH.parent))
    from bench.test_bench_modbus_transport import (
        DEVICE_COUNT,
        PLAN,
        SEQUENTIAL,
        TrioClient,
        peer_process,
    )
    from hubgate.modbus.plan_group import read_plans

    out = out_dir / f"hubgate-profile-{case}.txt"
    peer = ("pymodbus",) if case == "modbus-sequential" else ("trio", str(DEVICE_COUNT))
    with peer_process(*peer) as ports:
        client = TrioClient(ports)

        async def sequential() -> None:
            for _ in range(SEQUENTIAL):
                await client.devices[0].read_registers(0, 10)

        async def at_once() -> None:  # as the benchmark and the control loop read them
            await read_plans([(d, PLAN) for d in client.devices], trio.current_time() + 1.0)

        round_ = sequential if case == "modbus-sequential" else at_once
        client.run(round_)  # warm
        sampler = record(os.getpid(), seconds, out)
        while sampler.poll() is None:
            client.run(round_)
        client.close()
    return out


def ocpp(stations: int, seconds: float, speedup: float, out_dir: Path) -> Path:
    """hubgate's listener in its own process under the benchmark's station load."""
    sys.path.insert(0, str(BENCH.parent))
    from bench.test_bench_ocpp import run_load

    out = out_dir / f"hubgate-profile-ocpp-{stations}-{speedup:g}x.txt"
    started: list[subprocess.Popen[bytes]] = []
    figures = run_load(
        stations, seconds, speedup, on_steady=lambda pid: started.append(record(pid, seconds, out))
    )
    started[0].wait(60)
    print(figures)
    return out


def cycle(cycle_s: float, seconds: float, out_dir: Path, device_workers: int = 0) -> Path:
    """The gateway in this process controlling the 500-connector depot served by the
    simulator in its own (bench/test_bench_control_loop.py; its Modbus devices from
    `device_workers` processes), sampled over `seconds`."""
    sys.path.insert(0, str(BENCH.parent))
    from bench.test_bench_control_loop import SCENARIO
    from hubgate.benchmarking import end_to_end
    from hubgate.benchmarking.end_to_end import measure_cycle

    end_to_end.READY_TIMEOUT_S = 600  # a short cycle on a busy machine connects slowly
    out = out_dir / f"hubgate-profile-cycle-{cycle_s:g}.txt"
    started: list[subprocess.Popen[bytes]] = []
    run = measure_cycle(
        SCENARIO,
        settle_s=20.0,
        cycles=max(3, int(seconds / cycle_s)),
        cycle_s=cycle_s,
        on_window=lambda: started.append(record(os.getpid(), seconds, out)),
        device_workers=device_workers,
    )
    started[0].wait(60)
    print(run.as_json())
    return out


def main(argv: list[str]) -> None:
    if argv[:1] == ["--out"]:
        out_dir = Path(argv[1])
        out_dir.mkdir(parents=True, exist_ok=True)
        argv = argv[2:]
    else:
        out_dir = Path(tempfile.mkdtemp(prefix="hubgate-profile-"))
    case = argv[0]
    if case == "cycle":
        workers = int(argv[3]) if len(argv) > 3 else 0
        out = cycle(float(argv[1]), float(argv[2]), out_dir, workers)
    elif case.startswith("modbus"):
        out = modbus(case, float(argv[1]), out_dir)
    else:
        out = ocpp(int(argv[1]), float(argv[2]), float(argv[3]) if len(argv) > 3 else 1.0, out_dir)
    time.sleep(0.5)
    print(summary(out))
    print(f"collapsed stacks: {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
