"""Proportion of wins of DHAM feature maps (DecisiveNets, §5.7, Figs 2–4), no Ray import.

In evaluation mode every DHAM activation (:class:`dham_core.activation.DHAMActivation`) is a
hard winner-takes-all inside each group of ``ell`` consecutive channels, at every location
(eq. 4 of docs/decisivenets.md). The *proportion of wins* of a feature map ``j`` of a layer is
the fraction of (image, location) pairs where ``j`` is its group's winner — the paper's "sum of
the binary version of its pixels obtained using WTA", normalised. We count, per DHAM layer,
per class and per channel, how many (image, location) pairs the channel wins, with forward
hooks on the activation modules; the winner is the activation's own
:meth:`DHAMActivation.winners` (first channel holding the group's maximum of ReLU(z), so a
group where every z <= 0 counts as a win of its first channel, as the binary WTA writes one 1
per group). Such "dead" group-locations are also counted per layer, so their share is known.

Layers are numbered 1, 2, ... in the order their activation is first called during the
forward pass (docs/decisivenets.md, "Proportion of wins").

    tables = count_wins(model, [(images, labels)], num_classes=10)
    tables.proportions(1)          # (C,) overall proportions of layer 1; each group sums to 1
    tables.balance(1)              # normalised win entropy of layer 1 (1 = balanced)
"""
from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field
from typing import Iterable

import torch
from torch import nn

from .activation import DHAMActivation
from .checks import is_int, refuse
from .data import DATASETS, load_dataset
from .devices import resolve_device
from .train import expected_fields


@dataclass
class WinsConfig:
    """How to count the wins of a trained DHAM model on its dataset's test split."""

    arch: str | None = None
    """The architecture the evaluated checkpoint must have (None = any)."""
    dataset: str | None = None
    """The dataset the checkpoint must have been trained on (None = any); its test split is used."""
    data_root: str | None = None
    """Dataset folder (None = the one the checkpoint was trained with)."""
    download: bool = False
    """Let torchvision download CIFAR (needs network)."""
    batch_size: int = 512
    """Test images per forward pass."""
    limit_batches: int | None = None
    """Count on at most this many test batches (None = the whole test split)."""
    device: str = "auto"
    """"auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:N"."""
    num_threads: int | None = None
    """torch intra-op CPU threads (None = leave torch's default)."""

    def validate(self) -> "WinsConfig":
        """Raise ``ValueError`` naming the field and the allowed values for any bad value."""
        fail = functools.partial(refuse, self)
        if self.dataset is not None and self.dataset not in DATASETS:
            fail("dataset", f"None or one of {tuple(DATASETS)}")
        if self.arch is not None and not isinstance(self.arch, str):
            fail("arch", "None or an architecture name")
        if not is_int(self.batch_size) or self.batch_size < 1:
            fail("batch_size", "an integer >= 1")
        for name in ("limit_batches", "num_threads"):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or value < 1):
                fail(name, "None or an integer >= 1")
        if not isinstance(self.download, bool):
            fail("download", "True or False")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                fail("device", '"auto" or a torch device string ("cpu", "cuda", "cuda:0")')
        return self

    def expect(self) -> dict:
        """The checkpoint fields this evaluation requires (for ``model_from_state``)."""
        return expected_fields(self)


def balance(wins: torch.Tensor, ell: int) -> float | None:
    """Mean normalised entropy of the win distribution within each group of ``ell`` channels.

    ``wins``: (C,) win counts of one layer. For group ``g`` with counts ``w_g1..w_gℓ``,
    ``p_gj = w_gj / Σ_j w_gj`` and ``H_g = −Σ_j p_gj ln p_gj`` (0 ln 0 = 0); the balance is
    ``(1/G) Σ_g H_g / ln ℓ`` over the layer's ``G = C / ℓ`` groups: 1 when every map of every
    group wins equally often, 0 when one map of each group always wins. None for ``ell = 1``
    (a group of one channel has no competition) or a layer with no counts.
    """
    if ell < 2 or int(wins.sum()) == 0:
        return None
    groups = wins.double().view(-1, ell)
    p = groups / groups.sum(1, keepdim=True)
    entropy = -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(1)
    return float((entropy / math.log(ell)).mean())


@dataclass
class LayerWins:
    """The win counts of one DHAM layer."""

    index: int
    """1-based position in forward call order among the model's DHAM activations."""
    name: str
    """The activation module's qualified name in the model (e.g. ``layer1.0.act1``)."""
    ell: int
    """Channels per group in this layer (``C / c`` when the model was built with ``groups``)."""
    locations: int
    """Spatial locations per image (H·W; 1 for a feature vector)."""
    wins: torch.Tensor
    """(num_classes, C) int64: (image, location) pairs of each class each channel won."""
    dead: torch.Tensor
    """(num_classes,) int64: (image, location, group) triples where every z <= 0."""


@dataclass
class WinTables:
    """Win counts of every DHAM layer of a model over a dataset, overall and per class."""

    images: torch.Tensor
    """(num_classes,) int64: images counted per class."""
    layers: list[LayerWins] = field(default_factory=list)

    def layer(self, index: int) -> LayerWins:
        """Layer ``index`` (1-based); ``KeyError`` naming the layers there are."""
        if not 1 <= index <= len(self.layers):
            raise KeyError(f"layer must be in 1..{len(self.layers)} (got layer={index})")
        return self.layers[index - 1]

    def proportions(self, index: int, classes: Iterable[int] | None = None) -> torch.Tensor:
        """(C,) float64 proportions of wins of layer ``index`` over the images of ``classes``
        (None = all); within each group of ``ell`` channels they sum to 1."""
        layer = self.layer(index)
        rows = list(range(len(self.images))) if classes is None else list(classes)
        pairs = int(self.images[rows].sum()) * layer.locations
        if pairs == 0:
            raise ValueError(f"classes {rows} have no images counted")
        return layer.wins[rows].sum(0).double() / pairs

    def balance(self, index: int) -> float | None:
        """:func:`balance` of layer ``index`` over all images."""
        layer = self.layer(index)
        return balance(layer.wins.sum(0), layer.ell)

    def dead_fraction(self, index: int) -> float:
        """Share of layer ``index``'s (image, location, group) triples where every z <= 0."""
        layer = self.layer(index)
        triples = int(self.images.sum()) * layer.locations * (layer.wins.shape[1] // layer.ell)
        return int(layer.dead.sum()) / triples if triples else 0.0

    def state_dict(self) -> dict:
        """Tensors and plain values only (``torch.load(..., weights_only=True)`` reads it)."""
        return {"images": self.images.cpu(), "layers": [
            {"index": l.index, "name": l.name, "ell": l.ell, "locations": l.locations,
             "wins": l.wins.cpu(), "dead": l.dead.cpu()} for l in self.layers]}

    @classmethod
    def from_state(cls, state: dict) -> "WinTables":
        return cls(state["images"], [LayerWins(**layer) for layer in state["layers"]])


@torch.no_grad()
def count_wins(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
               num_classes: int, device: str | torch.device = "cpu") -> WinTables:
    """Count the WTA wins of every DHAM layer of ``model`` (put in eval mode) over ``batches``
    of ``(images, labels)``, per class (labels in ``0..num_classes-1``), on ``device``."""
    device = resolve_device(device)
    model.eval()
    names = {m: name for name, m in model.named_modules() if isinstance(m, DHAMActivation)}
    images = torch.zeros(num_classes, dtype=torch.int64, device=device)
    found: dict[nn.Module, LayerWins] = {}
    current: dict[str, torch.Tensor] = {}

    def hook(module, inputs, _output):
        z, labels = inputs[0], current["labels"]
        ell = module.group_size(z.shape[1])
        layer = found.get(module)
        if layer is None:
            layer = found[module] = LayerWins(
                len(found) + 1, names[module], ell, z[0, 0].numel(),
                torch.zeros(num_classes, z.shape[1], dtype=torch.int64, device=device),
                torch.zeros(num_classes, dtype=torch.int64, device=device))
        per_image = module.winners(z).flatten(2).sum(2) if z.dim() > 2 else module.winners(z)
        layer.wins.index_add_(0, labels, per_image.to(torch.int64))
        dead = (z.unflatten(1, (-1, ell)).amax(2) <= 0).flatten(1).sum(1)
        layer.dead.index_add_(0, labels, dead)

    handles = [m.register_forward_hook(hook) for m in names]
    try:
        for batch_images, labels in batches:
            current["labels"] = labels.to(device)
            model(batch_images.to(device))
            images.index_add_(0, current["labels"], torch.ones_like(current["labels"]))
    finally:
        for handle in handles:
            handle.remove()
    return WinTables(images.cpu(), [
        LayerWins(l.index, l.name, l.ell, l.locations, l.wins.cpu(), l.dead.cpu())
        for l in found.values()])


def evaluate_wins(model: nn.Module, trained, cfg: WinsConfig) -> WinTables:
    """Count wins of ``model`` (trained with the ``DHAMConfig`` ``trained``) on its dataset's
    test split, as ``cfg`` says, in float32 (no autocast: the winners are those of the exact
    pre-activations)."""
    cfg.validate()
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    device = resolve_device(cfg.device)
    _, _, test_ds, num_classes, _ = load_dataset(
        trained.dataset, cfg.data_root or trained.data_root, cfg.download, trained.seed, trained.val_size)
    loader = torch.utils.data.DataLoader(test_ds, batch_size=cfg.batch_size, shuffle=False)
    return count_wins(model.to(device), itertools.islice(loader, cfg.limit_batches), num_classes, device)
