"""Per-trial reset of process-wide state, so that trials sharing a Ray actor do not leak state.

The runner reuses trial actors (``TuneConfig(reuse_actors=True)``: starting a Python worker
per trial costs more than a small trial). For a function trainable Ray Tune's reset
(``FunctionTrainable.reset_config``) only starts a new training thread in the same process:
whatever a trial set process-wide stays for the next trial on that actor — torch's CPU
thread count (``DHAMConfig.num_threads``), the global RNG seeds (``torch.manual_seed``),
the default dtype, deterministic-algorithm and cuDNN flags, float32 matmul precision,
environment variables. :func:`fresh_state` wraps a trainable so that every trial starts from
the state the actor had before its first trial, as on a fresh actor (Ray has no such hook).

Caches that are pure functions of their arguments stay (read-only data: ``dham_core.data``'s
MNIST digits, ``hopfield_capacity``'s memory blocks): they make a reused actor cheaper.
"""
from __future__ import annotations

import functools
import os
import random

_baseline: dict | None = None  # the state of this process before its first trial


def capture() -> dict:
    """The process-wide state a trial could change (and :func:`restore` puts back)."""
    import numpy as np  # imported here, at a trial's start: unpickling the wrapper on a new
    import torch  # actor stays cheap, so a new actor is not outrun by a reused one

    return {
        "threads": torch.get_num_threads(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        "numpy_rng": np.random.get_state(),
        "python_rng": random.getstate(),
        "dtype": torch.get_default_dtype(),
        "deterministic": (torch.are_deterministic_algorithms_enabled(),
                          torch.is_deterministic_algorithms_warn_only_enabled()),
        "cudnn": (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic),
        "matmul_precision": torch.get_float32_matmul_precision(),
        "environ": dict(os.environ),
    }


def restore(state: dict) -> None:
    """Put back a state from :func:`capture`."""
    import numpy as np
    import torch

    if torch.get_num_threads() != state["threads"]:
        torch.set_num_threads(state["threads"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    np.random.set_state(state["numpy_rng"])
    random.setstate(state["python_rng"])
    torch.set_default_dtype(state["dtype"])
    if (torch.are_deterministic_algorithms_enabled(),  # setting it costs ~30 ms: only if changed
            torch.is_deterministic_algorithms_warn_only_enabled()) != state["deterministic"]:
        torch.use_deterministic_algorithms(state["deterministic"][0],
                                           warn_only=state["deterministic"][1])
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = state["cudnn"]
    torch.set_float32_matmul_precision(state["matmul_precision"])
    if dict(os.environ) != state["environ"]:
        os.environ.clear()
        os.environ.update(state["environ"])


def fresh_state(trainable):
    """``trainable`` run from the state this process had before its first trial (captured on
    that first call; restored before every later one)."""
    @functools.wraps(trainable)
    def run(config):
        global _baseline
        if _baseline is None:
            _baseline = capture()
        else:
            restore(_baseline)
        return trainable(config)

    return run
