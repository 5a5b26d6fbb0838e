"""Run a command as a child process and measure its wall time and peak resident memory."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Measured:
    wall_s: float
    peak_rss_mb: float
    stdout: str


def run_measured(argv: list[str], log_path: Path, env: dict | None = None) -> Measured:
    """Run argv to completion; stdout and stderr go to log_path as well as being returned.

    Peak memory is the child's own maximum resident set size (``wait4`` on its pid), so it
    counts neither this process nor earlier children.
    """
    start = time.perf_counter()
    with open(log_path, "w") as log:
        child = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    stdout = Path(log_path).read_text()
    if child.returncode != 0:
        tail = "\n".join(stdout.splitlines()[-15:])
        raise RuntimeError(f"{argv[0]} ... exited with {child.returncode}:\n{tail}")
    result = Measured(wall_s=wall, peak_rss_mb=usage.ru_maxrss / 1024, stdout=stdout)
    Path(str(log_path) + ".json").write_text(
        json.dumps({"wall_s": result.wall_s, "peak_rss_mb": result.peak_rss_mb})
    )
    return result


def measured_before(log_path: Path) -> Measured | None:
    """What run_measured recorded for an earlier run with this log, if it finished."""
    record = Path(str(log_path) + ".json")
    if not record.exists():
        return None
    data = json.loads(record.read_text())
    return Measured(data["wall_s"], data["peak_rss_mb"], Path(log_path).read_text())


def machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        flags = next(
            line
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
        )
        isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags]
    except (OSError, StopIteration):
        isa = []
    memory = None
    try:
        memory = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "isa": isa,
        "memory_gb": memory,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
