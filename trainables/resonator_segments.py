"""Ray Tune trainable of the corrupted-segment experiment (thesis Tables 4.3, 4.6): trial
config -> ``CorruptionConfig`` -> ``dham_core.resonator_corruption.corrupted_segment_rows`` ->
one cell per corrupted fraction (``trainables.pack.report_cells``; ``cells_done`` numbers them).
"""
from __future__ import annotations

import time

from dham_core.resonator_corruption import CorruptionConfig, corrupted_segment_rows
from trainables.common import FAULT_KEY, config_to_dataclass
from trainables.pack import report_cells

# Row fields that are text, not metrics (a pack cell reports numbers only).
TEXT = ("corruption",)


def corruption_config(config: dict) -> CorruptionConfig:
    """The trial's config as a validated :class:`CorruptionConfig` (the test-only fault key
    is not one of its fields)."""
    return config_to_dataclass(CorruptionConfig, config, ignore=(FAULT_KEY,)).validate()


def validate_segments(config: dict) -> None:
    corruption_config(config)


def segments_pack_size(config: dict) -> tuple[int, int]:
    """(cells of a trial, 0 dropped): one per corrupted fraction."""
    return len(corruption_config(config).fractions), 0


def resonator_segments(config: dict) -> None:
    started = time.perf_counter()
    rows = [{key: float(v) for key, v in row.items() if key not in TEXT}
            for row in corrupted_segment_rows(corruption_config(config))]
    report_cells(config, rows, {}, started)
