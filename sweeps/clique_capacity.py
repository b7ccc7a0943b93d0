"""Gripon & Berrou 2011: retrieval error of the clique network vs the messages stored
(docs/gripon_berrou.md, "Retrieval" and "Density and error").

c = 8 clusters of ℓ = 256 neurons, 4 erased clusters, M from 1,000 to 40,000 stored messages:
the error rate after 1 and 4 iterations for the sum-of-sum and the sum-of-max rules, beside the
counted and the predicted density ``d = 1 − (1 − 1/ℓ²)^M`` and the one-iteration error formula
``P_e = 1 − (1 − d^(c−c_e))^(c_e(ℓ−1))``. One trial = one network filled message by message
with every (M, iterations) cell measured on the way (dham_core.clique_capacity.clique_capacity_rows).

    python sweeps/clique_capacity.py --preset smoke
    python sweeps/clique_capacity.py --preset cpu --seeds 2
    python sweeps/clique_capacity.py --preset paper --seeds 5 --gpus-per-trial 0.5
"""
from optuna.distributions import CategoricalDistribution

from dham_core.clique_capacity import CliqueCapacityConfig
from dham_core.clique_memory import RULES
from sweeps.runner import Preset, Sweep, main
from trainables.clique import clique_capacity_pack, validate_clique
from trainables.common import config_to_dataclass

PAPER_MESSAGES = [1000, 2500, 5000, 7500, 10000, 12500, 15000, 17500, 20000, 22500, 25000, 27500, 30000,
                  35000, 40000]



def pack_size(config: dict) -> tuple[int, int]:
    """(cells of a trial, 0 dropped): one per (M, iterations) pair, as the core measures them."""
    cfg = config_to_dataclass(CliqueCapacityConfig, config)
    return len(set(cfg.messages)) * len(set(cfg.iterations)), 0


SWEEP = Sweep(
    name="clique_capacity",
    table="gripon.clique_capacity",
    description="Clique network retrieval error vs stored messages (c=8, l=256, 4 erased).",
    trainable=clique_capacity_pack,
    space={"rule": CategoricalDistribution(list(RULES))},
    grid={"rule": list(RULES)},
    presets={
        "smoke": Preset({"neurons_per_cluster": 64, "messages": [500, 1000, 2000, 3000], "num_tests": 200,
                         "device": "cpu"}, num_samples=2,
                        description="c = 8, l = 64, M up to 3,000, 200 tests: about a minute"),
        "cpu": Preset({"messages": PAPER_MESSAGES, "num_tests": 2000, "device": "cpu"}, num_samples=2,
                      seconds_per_trial=63, measured_on="2-core CPU, both trials at once",
                      description="the classic setting, 2,000 tests per point: 63 s on 2 cores "
                                  "(measured)"),
        "paper": Preset({"messages": PAPER_MESSAGES, "num_tests": 10000, "device": "auto"}, num_samples=2,
                        description="GPU preset: 10,000 tests per point"),
    },
    metric="cells_done", mode="max", validate=validate_clique, max_t_key=None, pack=pack_size,
)

if __name__ == "__main__":
    main(SWEEP)
