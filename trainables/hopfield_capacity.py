"""Ray Tune trainable of the dense associative memory's capacity experiments: trial config ->
``CapacityConfig`` -> ``dham_core.hopfield_capacity.capacity_rows`` -> one report per cell.

One trial = one experiment (one-step error, half-recall K, random starts or XOR) over a block
of random memory sets, every (N, K, n, rectified) cell vectorised by the core.
"""
from __future__ import annotations

import time

from dham_core.hopfield_capacity import CapacityConfig, capacity_rows
from trainables.common import FAULT_KEY, config_to_dataclass, inject_fault, report


def report_cells(config: dict, rows: list[dict], final: dict, started: float) -> None:
    """One Tune result per cell, numbered by the metric ``cells_done`` (with ``pack_seconds``
    since ``started``); the last cell carries the pack's aggregate ``final``."""
    for done, row in enumerate(rows, 1):
        out = {**row, "cells_done": done, "pack_seconds": time.perf_counter() - started}
        if done == len(rows):
            out.update(final)
        inject_fault(config, done, False, out)
        report(out)


def validate_capacity(config: dict) -> None:
    config_to_dataclass(CapacityConfig, config, ignore=(FAULT_KEY,)).validate()


def hopfield_capacity_pack(config: dict) -> None:
    """Cells and aggregates as ``capacity_rows`` documents them."""
    cfg = config_to_dataclass(CapacityConfig, config, ignore=(FAULT_KEY,)).validate()
    started = time.perf_counter()
    rows, final = capacity_rows(cfg)
    report_cells(config, rows, final, started)
