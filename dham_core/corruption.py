"""Noise corruptions of CIFAR-10-C (Hendrycks & Dietterich, ICLR 2019), and its published files.

DecisiveNets Table 5 (docs/decisivenets.md, "Table 5 - robustness") evaluates trained networks
on three of the CIFAR-10-C noises at severities 1-5, with the benchmark's parameters for
32×32 images in [0, 1] (``make_cifar_c.py`` of the benchmark's code):

* ``gaussian_noise``: ``clip(x + N(0, c²), 0, 1)``, standard deviation c = 0.04, 0.06, 0.08,
  0.09, 0.10;
* ``shot_noise``: ``clip(Poisson(x·c) / c, 0, 1)``, c = 500, 250, 100, 75, 50 (photon counts:
  variance x/c around x);
* ``impulse_noise``: salt-and-pepper with amount c = 0.01, 0.02, 0.03, 0.05, 0.07. Reading
  chosen: every value of the (C, H, W) array independently, with probability c, is replaced by
  1 or 0 (each with probability 1/2) — scikit-image's ``random_noise(mode="s&p", amount=c)``
  as written since 0.19. The 2018 scikit-image the benchmark used placed a fixed number
  ⌈c·size/2⌉ of salt and of pepper values at positions drawn with replacement; the expected
  fraction of replaced values is c in our reading, slightly less in that one (repeated draws).

Every value is drawn per element (per channel of every pixel), as in the benchmark. The output
is clipped to [0, 1] and stays float: the published files store ``uint8(255·x)`` (truncated),
which this module does not imitate.

:func:`corrupt` draws from a ``torch.Generator`` only, so one seed gives the same corrupted
images on every run; :func:`noise_generator` seeds one per (kind, severity, seed), so that every
model of a sweep is evaluated on the same corrupted images. :func:`load_cifar10c` reads the
published ``.npy`` files (https://zenodo.org/record/2535967) when the user has them.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from dham_core.checks import is_int

KINDS = ("gaussian_noise", "shot_noise", "impulse_noise")
SEVERITIES = (1, 2, 3, 4, 5)
# Hendrycks & Dietterich's CIFAR-10-C parameters (32×32, pixels in [0, 1]), severities 1..5.
PARAMETERS = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),  # standard deviation
    "shot_noise": (500.0, 250.0, 100.0, 75.0, 50.0),  # photons per unit intensity
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),  # fraction of values replaced
}
PUBLISHED_PER_SEVERITY = 10_000  # CIFAR-10-C: the 10,000 test images per severity


def check_kind(kind) -> str:
    """``kind`` if it is one of :data:`KINDS`, else ``ValueError`` naming the field."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} (got kind={kind!r})")
    return kind


def check_severity(severity) -> int:
    """``severity`` as an int if it is an integer in 1..5, else ``ValueError`` naming the field."""
    if not is_int(severity) or severity not in SEVERITIES:
        raise ValueError(f"severity must be an integer in 1..5 (got severity={severity!r})")
    return int(severity)


def parameter(kind: str, severity: int) -> float:
    """The benchmark's parameter c of ``kind`` at ``severity`` (checked)."""
    return PARAMETERS[check_kind(kind)][check_severity(severity) - 1]


def corrupt(images: torch.Tensor, kind: str, severity: int, generator: torch.Generator) -> torch.Tensor:
    """``images`` (B, C, H, W), values in [0, 1], corrupted by ``kind`` at ``severity`` (1-5).

    Returns a new float tensor in [0, 1] on the images' device; ``generator`` (on that device)
    is the only source of randomness. See the module doc for the formulas and readings."""
    c = parameter(kind, severity)
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise ValueError("images must be a floating-point tensor of shape (B, C, H, W) "
                         f"(got {type(images).__name__} {tuple(getattr(images, 'shape', ()))})")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError("images must hold values in [0, 1] (corrupt before normalising; got "
                         f"min={float(images.min()):.4g}, max={float(images.max()):.4g})")
    if kind == "gaussian_noise":
        noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
        out = images + c * noise
    elif kind == "shot_noise":
        out = torch.poisson(images * c, generator=generator) / c
    else:
        flipped = torch.rand(images.shape, generator=generator, device=images.device) < c
        salted = torch.rand(images.shape, generator=generator, device=images.device) < 0.5
        out = torch.where(flipped, salted.to(images.dtype), images)
    return out.clamp_(0.0, 1.0)


def noise_generator(kind: str, severity: int, seed: int = 0, device: str | torch.device = "cpu") -> torch.Generator:
    """A generator seeded from (kind, severity, seed) alone: the same draws for every model."""
    check_kind(kind)
    check_severity(severity)
    digest = hashlib.sha256(f"{kind}/{severity}/{int(seed)}".encode()).digest()
    # every bit depends on all three (a CPU generator keeps only a seed's low 32 bits)
    return torch.Generator(device=device).manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def load_cifar10c(root: str | Path, kind: str, severity: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The published CIFAR-10-C images of ``kind`` at ``severity``: (N, C, H, W) float32 in
    [0, 1] and N int64 labels (N = 10,000 for the published files).

    ``root`` holds ``<kind>.npy`` (uint8 images (5·N, H, W, C), severities 1..5 in consecutive
    blocks of N; published: 50,000 × 32 × 32 × 3) and ``labels.npy`` (5·N labels). Raises
    ``FileNotFoundError`` naming the missing file, ``ValueError`` for arrays of the wrong shape."""
    check_kind(kind)
    severity = check_severity(severity)
    root = Path(root)
    paths = {name: root / f"{name}.npy" for name in (kind, "labels")}
    for path in paths.values():
        if not path.is_file():
            raise FileNotFoundError(
                f"CIFAR-10-C file {path.name} not found in cifar10c_root={str(root)!r}: download "
                "CIFAR-10-C (https://zenodo.org/record/2535967), unpack it and pass the folder "
                f"holding {', '.join(k + '.npy' for k in KINDS)} and labels.npy")
    images = np.load(paths[kind], mmap_mode="r")
    labels = np.load(paths["labels"], mmap_mode="r")
    count = images.shape[0] // len(SEVERITIES)
    if (images.ndim != 4 or count == 0 or images.shape[0] != count * len(SEVERITIES)
            or labels.shape != images.shape[:1]):
        raise ValueError(f"{paths[kind].name} must hold 5 x N images (5 x N, H, W, C) and "
                         f"labels.npy the 5 x N labels (published: N = {PUBLISHED_PER_SEVERITY}; "
                         f"got {images.shape} and {labels.shape})")
    block = slice((severity - 1) * count, severity * count)
    pixels = torch.from_numpy(np.array(images[block])).permute(0, 3, 1, 2).float() / 255.0
    return pixels.contiguous(), torch.from_numpy(np.array(labels[block])).to(torch.int64)
