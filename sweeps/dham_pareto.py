"""Beyond DecisiveNets: the accuracy–multiplications front with one group size ell per stage.

    python sweeps/dham_pareto.py --search tpe --preset smoke        # minutes on a CPU
    python sweeps/dham_pareto.py --search tpe --preset paper --num-samples 60 --gpus-per-trial 0.5

The paper uses one ell in every layer and calls that "suboptimal" (docs/decisivenets.md,
"Beyond the paper: the accuracy–multiplications front"). This sweep is a multi-objective TPE
search (validation accuracy up, analytic multiplications per image down; no ASHA, which
needs one metric) over one ell per ResNet stage (``ell_stage1`` .. ``ell_stage4``, composed
into ``stage_ell`` by ``trainables.dham_pareto``) and the temperatures. Its report is the
Pareto front beside the paper's single-ell points (``python -m analysis.report dham_pareto``).
TPE only: a grid over four stage axes would be a product of thousands of trainings.
"""
from optuna.distributions import CategoricalDistribution, FloatDistribution

from dham_core.published import ELLS
from sweeps.dham_presets import PAPER_R18, SMOKE
from sweeps.runner import Preset, Sweep, main
from trainables.dham_pareto import train_dham_pareto, validate

TEMPERATURES = {"t_init": FloatDistribution(0.1, 10.0, log=True),  # Table 3's ranges
                "t_final": FloatDistribution(100.0, 10_000.0, log=True)}
SEARCHED = ("ell", "t_init", "t_final")
TPE = ("tpe",)


def stage_space(*choices: list[int]) -> dict:
    """One categorical axis per stage, ``ell_stage1`` .. (Optuna's choices cannot be tuples)."""
    return {f"ell_stage{i}": CategoricalDistribution(c) for i, c in enumerate(choices, 1)} | TEMPERATURES


def without_searched(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in SEARCHED}


SWEEP = Sweep(
    name="dham_pareto",
    table="decisivenets.pareto",
    description="Multi-objective TPE over per-stage ell and temperatures (accuracy, mults).",
    trainable=train_dham_pareto,
    # The paper's ell values in every stage of the standard ResNet-18 (64..512 channels).
    space=stage_space(*[list(ELLS)] * 4),
    grid={},
    presets={
        # The tiny smoke ResNet-18 has 8/16/32/64 channels in its stages: ell up to those.
        "smoke": Preset({**without_searched(SMOKE), "epochs": 2},
                        space=stage_space([1, 2, 4, 8], [1, 2, 4, 8, 16], [1, 2, 4, 8, 16, 32],
                                          [1, 2, 4, 8, 16, 32, 64]),
                        num_samples=8, searches=TPE,
                        description="tiny ResNet-18 on offline MNIST digits, 2 epochs, 8 trials: "
                                    "minutes on a CPU"),
        # The search ranks on val_acc: keep a validation split even where Table 1 used none.
        "paper": Preset({**without_searched(PAPER_R18), "val_size": 5000}, num_samples=60, searches=TPE,
                        description="ResNet-18 / CIFAR-10, 300 epochs per trial: GPU cluster"),
    },
    metric=["val_acc", "mults"], mode=["max", "min"], validate=validate,
)

if __name__ == "__main__":
    main(SWEEP)
