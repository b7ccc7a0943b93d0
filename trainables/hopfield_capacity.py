"""Ray Tune trainable of the dense associative memory's capacity experiments: trial config ->
``CapacityConfig`` -> ``dham_core.hopfield_capacity.capacity_rows`` -> one report per cell.

One trial = one experiment (one-step error, half-recall K, random starts or XOR) over a block
of random memory sets, every (N, K, n, rectified) cell vectorised by the core.
"""
from __future__ import annotations

import time

from dham_core.hopfield_capacity import CapacityConfig, capacity_rows
from trainables.common import FAULT_KEY, config_to_dataclass
from trainables.pack import report_cells


def validate_capacity(config: dict) -> None:
    config_to_dataclass(CapacityConfig, config, ignore=(FAULT_KEY,)).validate()


def hopfield_capacity_pack(config: dict) -> None:
    """Cells and aggregates as ``capacity_rows`` documents them."""
    cfg = config_to_dataclass(CapacityConfig, config, ignore=(FAULT_KEY,)).validate()
    started = time.perf_counter()
    rows, final = capacity_rows(cfg)
    report_cells(config, rows, final, started)
