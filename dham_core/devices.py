"""The one device resolver every core entry point uses (trainers, capacity packs, resonators)."""
from __future__ import annotations

import torch


def resolve_device(name: str | torch.device) -> torch.device:
    """``"auto"`` → CUDA if available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:N"`` as given.

    Raises ValueError naming the field when CUDA is asked for on a machine without it."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f'device must be "auto", "cpu", "cuda" or "cuda:N" (got device={name!r})') from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f'device must be "auto" or an available device (got device={name!r}, no CUDA here)')
    return device
