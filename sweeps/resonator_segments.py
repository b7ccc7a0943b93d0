"""Why the resonator head trails overlap decoding (thesis Tables 4.3, 4.6): class targets at
D = 1280 with a fraction of their segments corrupted, decoded by the sparse resonator and by the
nearest class target (docs/resonator.md, "Corrupted segments").

    python sweeps/resonator_segments.py --preset smoke             # seconds on a CPU
    python sweeps/resonator_segments.py --preset thesis --seeds 3  # k x V x corruption, f to 0.9

One trial = one (k, V, corruption) setting with every fraction solved as one batch
(``dham_core.resonator_corruption.corrupted_segment_rows``); no data set, CPU only. The
resonator runs as the classifier head's does (``a = 6``, ``patience = 2``).
"""
from optuna.distributions import CategoricalDistribution

from dham_core.resonator_corruption import CORRUPTIONS
from sweeps.runner import Preset, Sweep, main
from trainables.resonator_segments import (
    resonator_segments, segments_pack_size, validate_segments)

GRID = ("grid",)
FRACTIONS = [round(0.1 * i, 1) for i in range(10)]  # 0 .. 0.9: past 0.5 the random case breaks

SWEEP = Sweep(
    name="resonator_segments",
    table="resonator.segments",
    description="Resonator vs nearest-target decoding of class targets with corrupted segments.",
    trainable=resonator_segments,
    space={"k": CategoricalDistribution([40, 64]), "V": CategoricalDistribution([2, 3]),
           "corruption": CategoricalDistribution(list(CORRUPTIONS))},
    grid={"k": [40, 64], "V": [2, 3], "corruption": list(CORRUPTIONS)},
    presets={
        "smoke": Preset({"D": 1280, "fractions": [0.0, 0.3, 0.5], "num_problems": 32,
                         "a": 6, "patience": 2},
                        grid={"k": [40], "V": [2], "corruption": list(CORRUPTIONS)},
                        searches=GRID,
                        description="k = 40, V = 2, 3 fractions x 32 inputs: seconds per trial"),
        "thesis": Preset({"D": 1280, "fractions": FRACTIONS, "num_problems": 256, "a": 6,
                          "patience": 2},
                         searches=GRID,
                         description="k in {40, 64} x V in {2, 3} x both corruptions, f = 0 .. "
                                     "0.9, 256 inputs each: minutes per trial on 1 core"),
    },
    metric="cells_done", mode="max", max_t_key=None,
    validate=validate_segments, pack=segments_pack_size,
)

if __name__ == "__main__":
    main(SWEEP)
