"""The machine a benchmark ran on, printed with its figures so that a number can be judged:
CPU count, torch's CPU threads and the load average before and after the measurement.

    from machine import machine_load  # benchmarks/ is sys.path[0] when run as a script

    with machine_load():          # prints "machine: ..." and "load average before: ..."
        ...                       # the measurement
                                  # prints "load average after: ..." (also when it raised)

On a machine shared with other jobs the load average (processes running or waiting for a
CPU, over 1, 5 and 15 minutes) above the CPU count means the benchmark shared its cores.
"""
from __future__ import annotations

import contextlib
import os


def load_line(when: str) -> str:
    """``load average <when>: 1-min 5-min 15-min``."""
    return f"load average {when}: " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_line() -> str:
    """CPU count (all, and those this process may use) and torch's intra-op threads."""
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"machine: {os.cpu_count()} CPUs ({usable} usable by this process), torch "
            f"{torch.__version__} with {torch.get_num_threads()} CPU threads")


@contextlib.contextmanager
def machine_load():
    """Print the machine line and the load average before the block, and after it."""
    print(machine_line())
    print(load_line("before"), flush=True)
    try:
        yield
    finally:
        print(load_line("after"), flush=True)
