"""Ray Tune trainable of the Gripon–Berrou clique network's capacity: trial config ->
``CliqueCapacityConfig`` -> ``dham_core.clique_capacity.clique_capacity_rows`` -> one report per
(M, iterations) cell (reported like the Hopfield capacity cells, ``cells_done`` numbering them).
"""
from __future__ import annotations

import time

from dham_core.clique_capacity import CliqueCapacityConfig, clique_capacity_rows
from trainables.common import FAULT_KEY, config_to_dataclass
from trainables.pack import report_cells


def validate_clique(config: dict) -> None:
    config_to_dataclass(CliqueCapacityConfig, config, ignore=(FAULT_KEY,)).validate()


def clique_capacity_pack(config: dict) -> None:
    """Cells and the aggregate as ``clique_capacity_rows`` documents them."""
    cfg = config_to_dataclass(CliqueCapacityConfig, config, ignore=(FAULT_KEY,)).validate()
    started = time.perf_counter()
    rows, final = clique_capacity_rows(cfg)
    report_cells(config, rows, final, started)
