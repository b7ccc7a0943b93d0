"""Krotov's slides: adversarial images made against an n = 2 and an n = 8 dense associative
memory, each set classified by both models (docs/krotov_hopfield.md, "Adversarial transfer").

One trial trains the two models alike (POWER_DEFAULTS per n), attacks each with input-gradient
steps ``v ← v − ε ∂C/∂v`` until it misclassifies, and reports the 2×2 error table beside the
slides' (100 %, 32 % / 57 %, 100 %) (dham_core.hopfield_attack.adversarial_transfer).

    python sweeps/hopfield_adversarial.py --preset smoke
    python sweeps/hopfield_adversarial.py --preset cpu --seeds 3
    python sweeps/hopfield_adversarial.py --preset paper --gpus-per-trial 1   # full MNIST, GPU
"""
from optuna.distributions import CategoricalDistribution

from dham_core.hopfield_attack import ATTACK_MODES
from sweeps.runner import Preset, Sweep, main
from trainables.hopfield_adversarial import hopfield_adversarial_transfer, validate_adversarial

SWEEP = Sweep(
    name="hopfield_adversarial",
    table="krotov.adversarial",
    description="Adversarial transfer between n = 2 and n = 8 dense associative memories.",
    trainable=hopfield_adversarial_transfer,
    space={"attack_mode": CategoricalDistribution(list(ATTACK_MODES))},
    grid={"attack_mode": ["scaled"]},
    presets={
        "smoke": Preset({"num_memories": 50, "epochs": 8, "ramp_epochs": 4, "batch_size": 100, "lr": 0.04,
                         "attack_images": 50, "attack_steps": 50, "attack_step_size": 0.05, "device": "cpu"},
                        num_samples=2,
                        description="K = 50, 8 epochs, 50 attacked images: about a minute"),
        "cpu": Preset({"num_memories": 500, "epochs": 300, "ramp_epochs": 100, "batch_size": 100,
                       "attack_images": 500, "attack_steps": 300, "device": "cpu"}, num_samples=2,
                      seconds_per_trial=181, measured_on="2-core CPU",
                      description="offline digits, K = 500, 300 epochs, 500 attacked images: 181 s "
                                  "on 2 cores (measured)"),
        "paper": Preset({"dataset": "mnist", "download": True, "num_memories": 2000, "epochs": 3000,
                         "ramp_epochs": 200, "batch_size": 1000, "attack_images": 1000, "attack_steps": 500,
                         "device": "auto"}, num_samples=2,
                        description="GPU preset: full MNIST, the paper's recipe for both models"),
    },
    metric="clean_error", mode="min", validate=validate_adversarial, max_t_key=None,
)

if __name__ == "__main__":
    main(SWEEP)
