"""Krotov & Hopfield 2016: capacity of dense associative memories with random ±1 memories
(docs/krotov_hopfield.md, "Capacity" and "Random starts and XOR").

One trial = one experiment over a block of random memory sets, every (N, K, n, plain/rectified)
cell of it vectorised in one streamed pass (dham_core.hopfield_capacity.capacity_rows):

(a) ``one_step``: per-bit one-step error vs K at N = 100, n ∈ {2, 3, 4}, beside the paper's
    P_err formula; (b) ``half_recall``: the K at which half of the stored memories are recalled
    perfectly, n ∈ {2, 3, 4, 5}, N from 50 to 200, beside ``N^(n−1)/(2(2n−3)!! ln N)``;
    (c) ``random_starts``: N = 100, K = 2000, random start states run to a fixed point;
    (d) ``xor``: N = 3 units, the 4 truth-table rows as memories, n = 1 … 4 plain and rectified.

    python sweeps/hopfield_capacity.py --preset smoke
    python sweeps/hopfield_capacity.py --preset cpu --max-concurrent 2
    python sweeps/hopfield_capacity.py --preset paper --gpus-per-trial 1  # GPU: no cap on K for n = 5
    python sweeps/hopfield_capacity.py --preset cpu --seeds 4             # 4 disjoint blocks of sets
"""
from optuna.distributions import CategoricalDistribution

from dham_core.hopfield_capacity import CAPACITY_EXPERIMENTS
from sweeps.runner import Preset, Sweep, main
from trainables.hopfield_capacity import hopfield_capacity_pack, validate_capacity

SMOKE = {"one_step_powers": [2, 3], "one_step_points": 4, "one_step_sets": 16, "num_probes": 50,
         "half_recall_neurons": [30, 50], "half_recall_powers": [2, 3], "half_recall_sets": 4,
         "random_start_memories": 500, "random_start_powers": [2, 5], "random_starts": 50,
         "random_start_sets": 2, "device": "cpu"}
CPU = {"one_step_sets": 64, "half_recall_sets": 8, "half_recall_max_memories": 400_000,
       "random_starts": 1000, "random_start_sets": 10, "device": "cpu"}
PAPER = {"one_step_sets": 256, "half_recall_sets": 16, "random_starts": 1000, "random_start_sets": 10,
         "device": "auto"}

SWEEP = Sweep(
    name="hopfield_capacity",
    table="krotov.capacity",
    description="Dense associative memory capacity: one-step error, half-recall K vs N, random starts.",
    trainable=hopfield_capacity_pack,
    space={"experiment": CategoricalDistribution(list(CAPACITY_EXPERIMENTS))},
    grid={"experiment": list(CAPACITY_EXPERIMENTS)},
    presets={
        "smoke": Preset(SMOKE, num_samples=4, description="tiny packs: about a minute"),
        "cpu": Preset(CPU, num_samples=4, seconds_per_trial=95,
                      measured_on="2-core CPU, --max-concurrent 2",
                      description="the paper's experiments; K capped at 400,000 (n = 5 at N >= 141 "
                                  "reports a lower bound); 10,000 random starts; 190 s on 2 cores "
                                  "(measured)"),
        "paper": Preset(PAPER, num_samples=4,
                        description="GPU preset: no K cap (n = 5 up to N = 200 streams ~3 million "
                                    "memories), 256 memory sets for the one-step error"),
    },
    metric="cells_done", mode="max", validate=validate_capacity, max_t_key=None,
)

if __name__ == "__main__":
    main(SWEEP)
