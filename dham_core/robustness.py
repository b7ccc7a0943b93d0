"""DecisiveNets Table 5: accuracy of a trained DHAM network under noise, no Ray import.

A trained network (eval mode: hard WTA, eq. 4 of the paper) is evaluated on its clean test set
and on the same test set corrupted by each CIFAR-10-C noise at each severity
(:mod:`dham_core.corruption`; docs/decisivenets.md, "Table 5 - robustness"). The corruption is
applied to the [0, 1] pixels before normalising, on the CPU, with a generator seeded from
(kind, severity, seed) alone, so every model of a sweep sees the same corrupted images. With
``source="cifar10c"`` the corrupted images are instead the published CIFAR-10-C files.

    metrics = run_robustness(state, RobustnessConfig(max_images=500, device="cpu"))
    metrics["clean_acc"], metrics["shot_noise_acc"], metrics["shot_noise_s3_acc"]
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import torch

from .checks import is_int, refuse
from .corruption import KINDS, SEVERITIES, corrupt, load_cifar10c, noise_generator
from .data import DATASETS, raw_test_set
from .models import ARCHS
from .devices import resolve_device
from .train import expected_fields, model_from_state

SOURCES = ("generated", "cifar10c")


@dataclass
class RobustnessConfig:
    """One evaluation of one trained network (the checkpoint comes separately)."""

    kinds: tuple[str, ...] = KINDS
    """Noises to evaluate, from ("gaussian_noise", "shot_noise", "impulse_noise")."""
    severities: tuple[int, ...] = SEVERITIES
    """Severities to evaluate, from 1..5 (the paper averages all five)."""
    source: str = "generated"
    """"generated": corrupt the model's own test set here; "cifar10c": read the published
    CIFAR-10-C files (CIFAR-10 models only)."""
    cifar10c_root: str | None = None
    """Absolute path of the folder holding the CIFAR-10-C ``.npy`` files (source="cifar10c")."""
    data_root: str | None = None
    """Dataset folder of the clean test set; None = the one the checkpoint was trained from."""
    download: bool = False
    """Let torchvision download CIFAR (needs network)."""
    dataset: str | None = None
    """The dataset the checkpoint must have been trained on (None = any); a mismatch is refused."""
    arch: str | None = None
    """The architecture the checkpoint must have (None = any); a mismatch is refused."""
    seed: int = 0
    """Seeds the noise (with the kind and severity); the same for every model."""
    max_images: int | None = None
    """Evaluate on the first this many test images (None = all)."""
    batch_size: int = 512
    """Evaluation batch size."""
    device: str = "auto"
    """"auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:N", "mps"."""
    num_threads: int | None = None
    """torch intra-op CPU threads for this process (None = leave torch's default)."""

    def validate(self) -> "RobustnessConfig":
        """Raise ``ValueError`` naming the field and the allowed values for any bad value."""
        fail = functools.partial(refuse, self)
        for name, allowed, what in (("kinds", KINDS, f"values from {KINDS}"),
                                    ("severities", SEVERITIES, "integers from 1..5")):
            values = getattr(self, name)
            if (isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values
                    or len(set(values)) != len(values)
                    or not all((is_int(v) or name == "kinds") and v in allowed for v in values)):
                fail(name, f"a non-empty list of distinct {what}")
            setattr(self, name, tuple(values))
        if self.source not in SOURCES:
            fail("source", f"one of {SOURCES}")
        if self.source == "cifar10c" and not (isinstance(self.cifar10c_root, str) and os.path.isabs(self.cifar10c_root)):
            fail("cifar10c_root", 'the absolute path of the folder holding the CIFAR-10-C .npy files when source="cifar10c"')
        if self.source == "cifar10c" and self.dataset not in (None, "cifar10"):
            fail("dataset", 'None or "cifar10" when source="cifar10c"')
        if self.dataset is not None and self.dataset not in DATASETS:
            fail("dataset", f"None or one of {tuple(DATASETS)}")
        if self.arch is not None and self.arch not in ARCHS:
            fail("arch", f"None or one of {ARCHS}")
        if not is_int(self.seed) or self.seed < 0:
            fail("seed", "an integer >= 0")
        if not is_int(self.batch_size) or self.batch_size < 1:
            fail("batch_size", "an integer >= 1")
        for name in ("max_images", "num_threads"):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or value < 1):
                fail(name, "None or an integer >= 1")
        if not isinstance(self.download, bool):
            fail("download", "True or False")
        return self


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, normalise,
             batch_size: int = 512, device: torch.device | str = "cpu") -> float:
    """Fraction of ``images`` ([0, 1] pixels, normalised batch by batch with ``normalise``)
    that ``model`` classifies as ``labels``, in eval mode (hard WTA)."""
    model.eval()
    correct = 0
    for start in range(0, len(labels), batch_size):
        batch = normalise(images[start:start + batch_size]).to(device)
        correct += int((model(batch).argmax(1).cpu() == labels[start:start + batch_size]).sum())
    return correct / len(labels)


def _corrupted_sets(cfg: RobustnessConfig, images: torch.Tensor, labels: torch.Tensor):
    """Yield (kind, severity, images, labels) for every evaluated cell."""
    for kind in cfg.kinds:
        for severity in cfg.severities:
            if cfg.source == "cifar10c":
                noisy, noisy_labels = load_cifar10c(cfg.cifar10c_root, kind, severity)
                yield kind, severity, noisy[:cfg.max_images], noisy_labels[:cfg.max_images]
            else:
                yield kind, severity, corrupt(images, kind, severity, noise_generator(kind, severity, cfg.seed)), labels


def evaluate_robustness(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, normalise,
                        cfg: RobustnessConfig, device: torch.device | str = "cpu") -> dict[str, float]:
    """Clean accuracy and accuracy per noise and severity of ``model`` on ``images`` ([0, 1]).

    Returns ``clean_acc``, ``<kind>_s<severity>_acc`` per evaluated cell and ``<kind>_acc``, the
    mean over the evaluated severities (Table 5's columns), all fractions in [0, 1]."""
    evaluate = functools.partial(accuracy, model, normalise=normalise, batch_size=cfg.batch_size, device=device)
    metrics = {"clean_acc": evaluate(images, labels)}
    for kind, severity, noisy, noisy_labels in _corrupted_sets(cfg, images, labels):
        metrics[f"{kind}_s{severity}_acc"] = evaluate(noisy, noisy_labels)
    for kind in cfg.kinds:
        metrics[f"{kind}_acc"] = sum(metrics[f"{kind}_s{s}_acc"] for s in cfg.severities) / len(cfg.severities)
    return metrics


def run_robustness(state: dict, cfg: RobustnessConfig) -> dict[str, float]:
    """Rebuild the network of checkpoint ``state`` (``Trainer.state_dict()``; refused when its
    dataset or arch is not the config's), evaluate it on its own dataset's test split (the split of the seed it was trained with) and return
    :func:`evaluate_robustness`'s metrics plus ``source_ell`` and ``source_seed``."""
    cfg.validate()
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    expect = {"dataset": "cifar10"} if cfg.source == "cifar10c" else {}
    expect.update(expected_fields(cfg))
    model, trained = model_from_state(state, expect)
    device = resolve_device(cfg.device)
    model = model.to(device)
    root = cfg.data_root if cfg.data_root is not None else trained.data_root
    test = raw_test_set(trained.dataset, root, cfg.download, trained.seed)
    images, labels = test.images[:cfg.max_images], test.labels[:cfg.max_images]
    metrics = evaluate_robustness(model, images, labels, test.normalise, cfg, device)
    return {**metrics, "source_ell": float(trained.ell), "source_seed": float(trained.seed)}
