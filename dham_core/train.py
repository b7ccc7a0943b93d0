"""The training loop for DHAM networks, no Ray import.

The recipe of DecisiveNets (Gripon, Lassance & Boukli Hacene), §5.1, as read in
docs/decisivenets.md, "Training recipe": SGD with momentum and weight decay, batch 128,
learning rate divided by 10 at 1/3 and 2/3 of training (``MultiStepLR`` stepped per
optimisation step, milestones in steps: for the paper's 300 epochs these fall exactly on
epochs 100 and 200), the temperature schedule ``t_init → t_final`` (eq. 5 there) stepped
once per optimisation step, evaluation with the hard WTA (``model.eval()``, eq. 4 there). On
CUDA: bf16 autocast (``amp``) and channels_last. ``schedule="cosine"`` with ``nesterov=True``
gives the resonator-head recipe instead (docs/resonator.md, "Training recipe of the head"); a
subclass changes the network, loss, decoding and final metrics through :meth:`Trainer.build_model`,
:meth:`Trainer.loss`, :meth:`Trainer.predict` and :meth:`Trainer.final_metrics`.

    trainer = Trainer(DHAMConfig(dataset="mnist_offline", arch="resnet18", width=8, ell=2, epochs=3))
    trainer.fit(lambda metrics, trainer: print(metrics))
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

from .activation import WTA_MODES, TemperatureSchedule, dham_modules
from .checks import is_int, is_number, refuse
from .data import DATASETS, load_dataset
from .devices import resolve_device
from .models import ARCHS, DEFAULT_BLOCKS, PLACEMENTS, allowed_stage_ells, build_model, check_stage_ell
from .mults import count_mults

# On CUDA the loss is checked for NaN/inf every this many steps (each check synchronises).
_CUDA_NAN_CHECK_INTERVAL = 20
_MULTS_BATCH = 256  # test images used for the measured multiplication count
SCHEDULES = ("step", "cosine")


@dataclass
class DHAMConfig:
    """One training run; defaults follow the paper's recipe (docs/decisivenets.md, "Training recipe")."""

    dataset: str = "cifar10"
    """One of data.DATASETS: "cifar10", "cifar100", "mnist_offline", "fashion_mnist"."""
    data_root: str | None = None
    """Dataset folder (CIFAR: holds cifar-10-batches-py/; Fashion-MNIST: the IDX files); None = default."""
    download: bool = False
    """Let torchvision download CIFAR (needs network)."""
    arch: str = "resnet18"
    """"resnet18", "resnet50" or "mobilenetv2" (CIFAR variants)."""
    width: int = 64
    """Base width (64 = the paper's networks; smaller for CPU smoke runs)."""
    blocks: tuple[int, ...] | None = None
    """Per-stage block counts (None = standard depth; e.g. (1, 1, 1, 1) for a tiny ResNet)."""
    ell: int = 1
    """Channels per DHAM group; 1 = the ReLU baseline. Exclusive with ``groups``."""
    groups: int | None = None
    """Number of groups c per layer instead of ell (Table 2); None = use ell."""
    stage_ell: tuple[int, ...] | None = None
    """One group size per stage (4 for a ResNet, 7 for MobileNet-V2; 1 = plain ReLUs in that
    stage), each dividing its stage's DHAM channels; exclusive with ``ell`` and ``groups``."""
    placement: str = "inside"
    """"inside" (the paper's: the ReLUs inside blocks) or "everywhere"."""
    wta: str = "keep"
    """Evaluation winner-takes-all: "keep" the winner's value or write 1 ("binary")."""
    t_init: float = 10.0
    """Temperature at the first step (> 0)."""
    t_final: float = 1000.0
    """Temperature after the last step (>= t_init); exponential in between."""
    epochs: int = 300
    """Training epochs (paper: 300)."""
    batch_size: int = 128
    """Training batch size (paper: 128)."""
    lr: float = 0.1
    """Initial SGD learning rate; divided by 10 at 1/3 and 2/3 of training."""
    momentum: float = 0.9
    """SGD momentum, in [0, 1)."""
    weight_decay: float = 5e-4
    """SGD weight decay (L2), >= 0."""
    schedule: str = "step"
    """Learning-rate schedule, stepped per optimisation step: "step" (÷10 at 1/3 and 2/3 of
    training, the DecisiveNets recipe) or "cosine" (cosine annealing from ``lr`` to 0 over all
    steps, the resonator-head recipe of docs/resonator.md)."""
    nesterov: bool = False
    """Nesterov momentum (needs momentum > 0)."""
    seed: int = 0
    """Seeds weight init, data split, shuffling and augmentation."""
    device: str = "auto"
    """"auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:N", "mps"."""
    amp: bool = True
    """bf16 autocast (used only on CUDA)."""
    channels_last: bool = True
    """channels_last memory format (used only on CUDA)."""
    num_workers: int = 0
    """DataLoader worker processes (0 = load in the training process)."""
    num_threads: int | None = None
    """torch intra-op CPU threads for this process (None = leave torch's default). On a shared
    CPU, 1 spares tiny models the waits at thread barriers."""
    limit_train_batches: int | None = None
    """Train on at most this many batches per epoch (None = all)."""
    eval_batch_size: int = 512
    """Batch size for validation/test evaluation."""
    val_size: int = 5000
    """Training images held out for validation (CIFAR, Fashion-MNIST; mnist_offline: fixed 500).
    0 = none: train on every training image (the paper's protocol); no ``val_acc`` is reported."""

    def validate(self) -> "DHAMConfig":
        """Raise ``ValueError`` naming the field and the allowed values for any bad value."""
        fail = functools.partial(refuse, self)
        choices = (("dataset", tuple(DATASETS)), ("arch", ARCHS), ("placement", PLACEMENTS), ("wta", WTA_MODES))
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                fail(name, f"one of {allowed}")
        for name in ("width", "ell", "epochs", "batch_size", "eval_batch_size"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                fail(name, "an integer >= 1")
        if not is_int(self.val_size) or self.val_size < 0:
            fail("val_size", "an integer >= 0 (0 = no validation split)")
        for name in ("groups", "limit_train_batches", "num_threads"):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or value < 1):
                fail(name, "None or an integer >= 1")
        if not is_int(self.seed):
            fail("seed", "an integer")
        if not is_int(self.num_workers) or self.num_workers < 0:
            fail("num_workers", "an integer >= 0")
        for name in ("download", "amp", "channels_last", "nesterov"):
            if not isinstance(getattr(self, name), bool):
                fail(name, "True or False")
        if self.groups is not None and self.ell != 1:
            raise ValueError(f"give either ell or groups, not both (got ell={self.ell}, groups={self.groups})")
        if not is_number(self.t_init) or self.t_init <= 0:
            fail("t_init", "a finite number > 0")
        if not is_number(self.t_final) or self.t_final < self.t_init:
            fail("t_final", f"a finite number >= t_init={self.t_init}")
        if not is_number(self.lr) or self.lr <= 0:
            fail("lr", "a finite number > 0")
        if not is_number(self.momentum) or not 0 <= self.momentum < 1:
            fail("momentum", "a number in [0, 1)")
        if not is_number(self.weight_decay) or self.weight_decay < 0:
            fail("weight_decay", "a finite number >= 0")
        if self.schedule not in SCHEDULES:
            fail("schedule", f"one of {SCHEDULES}")
        if self.nesterov and self.momentum <= 0:
            fail("nesterov", f"False when momentum={self.momentum} (Nesterov needs momentum > 0)")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                fail("device", '"auto" or a torch device string ("cpu", "cuda", "cuda:0", "mps")')
        if self.blocks is not None:
            blocks = self.blocks
            want = len(DEFAULT_BLOCKS[self.arch])
            if (
                isinstance(blocks, (str, bytes))
                or not hasattr(blocks, "__len__")
                or len(blocks) != want
                or not all(is_int(b) and b >= 1 for b in blocks)
            ):
                fail("blocks", f"None or {want} integers >= 1 for {self.arch}")
            self.blocks = tuple(blocks)
        if self.stage_ell is not None:
            if self.groups is not None or self.ell != 1:
                fail("stage_ell", f"None when ell != 1 or groups is given (ell={self.ell}, "
                     f"groups={self.groups}; give one of ell, groups or stage_ell)")
            allowed = allowed_stage_ells(self.arch, DATASETS[self.dataset][1], self.width,
                                         self.blocks, self.placement)
            self.stage_ell = check_stage_ell(self.stage_ell, allowed, self.arch)
        # ell/groups must divide every DHAM layer's channel count: build on the meta device
        # (no memory, no init cost); the activations check divisibility at construction.
        # (stage_ell was checked above against every stage's DHAM channel counts.)
        num_classes, in_channels = DATASETS[self.dataset]
        if self.stage_ell is None:
            with torch.device("meta"):
                build_model(self.arch, num_classes, in_channels, self.width, self.blocks,
                            self.ell, self.groups, self.placement, self.wta)
        return self


def _loader(dataset, batch_size: int, shuffle: bool, generator: torch.Generator | None, num_workers: int):
    if isinstance(dataset, TensorDataset):
        # In-memory tensors: index a whole batch at once instead of collating single items.
        sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        return DataLoader(dataset, sampler=BatchSampler(sampler, batch_size, drop_last=False), batch_size=None)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=num_workers, pin_memory=torch.cuda.is_available(),
                      persistent_workers=False)


class Trainer:
    """Model, SGD, LR and temperature schedules, and the per-epoch loop; resumable exactly.

    ``data`` optionally passes an already loaded ``load_dataset`` tuple (to share it).
    """

    def __init__(self, cfg: DHAMConfig, data: tuple | None = None) -> None:
        self.cfg = cfg.validate()
        self.device = resolve_device(cfg.device)
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        self.use_cuda = self.device.type == "cuda"
        self.amp = cfg.amp and self.use_cuda
        self.channels_last = cfg.channels_last and self.use_cuda
        if data is None:
            data = load_dataset(cfg.dataset, cfg.data_root, cfg.download, cfg.seed, cfg.val_size)
        self.train_ds, self.val_ds, self.test_ds, self.num_classes, self.in_channels = data

        torch.manual_seed(cfg.seed)
        model = self.build_model().to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.dham = dham_modules(model)

        batches = math.ceil(len(self.train_ds) / cfg.batch_size)
        self.steps_per_epoch = min(batches, cfg.limit_train_batches or batches)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)
        if cfg.schedule == "cosine":
            self.lr_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, self.total_steps)
        else:
            milestones = [max(1, round(self.total_steps * k / 3)) for k in (1, 2)]
            self.lr_scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, milestones, gamma=0.1)
        self.temperature = TemperatureSchedule(cfg.t_init, cfg.t_final, self.total_steps)
        self.epoch = 0  # completed epochs

    # -- what a subclass may change (the loop stays here) -------------------------------
    def build_model(self) -> torch.nn.Module:
        """The network to train (called once by ``__init__``, after the data is loaded)."""
        cfg = self.cfg
        return build_model(cfg.arch, self.num_classes, self.in_channels, cfg.width, cfg.blocks,
                           cfg.ell, cfg.groups, cfg.placement, cfg.wta, cfg.stage_ell)

    def loss(self, outputs, labels: torch.Tensor) -> torch.Tensor:
        """Training loss of the model's ``outputs`` for ``labels`` (here: softmax cross-entropy)."""
        return F.cross_entropy(outputs, labels)

    def predict(self, outputs) -> torch.Tensor:
        """Predicted labels ``(B,)`` from the model's ``outputs`` (train_acc and :meth:`evaluate`)."""
        return outputs.argmax(1)

    def final_metrics(self) -> dict:
        """What the last epoch adds: ``test_acc``, multiplications and ``num_params``."""
        metrics = {"test_acc": self.evaluate(self.test_ds)}
        metrics.update(self.multiplications())
        metrics["num_params"] = sum(p.numel() for p in self.model.parameters())
        return metrics

    # -- checkpointing ----------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict(),
            "temperature": self.temperature.state_dict(),
            "epoch": self.epoch,
            "torch_rng": torch.get_rng_state(),
            "config": dataclasses.asdict(self.cfg),
        }
        if self.use_cuda:
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (load it with ``torch.load(..., weights_only=True)``)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        self.temperature.load_state_dict(state["temperature"])
        self.epoch = int(state["epoch"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if self.use_cuda and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.device)

    # -- loops ------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def _to_device(self, images: torch.Tensor, labels: torch.Tensor):
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, labels.to(self.device, non_blocking=True)

    def _check_losses(self, pending: list[tuple[int, torch.Tensor]]) -> None:
        if not pending:
            return
        losses = torch.stack([loss for _, loss in pending])
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            first = int((~finite).nonzero()[0, 0])
            step, value = pending[first][0], float(losses[first])
            raise FloatingPointError(
                f"training loss became {value} at epoch {self.epoch + 1} (1-based), step {step + 1} of "
                f"{self.steps_per_epoch} in the epoch (global step {self.epoch * self.steps_per_epoch + step + 1})"
            )
        pending.clear()

    def train_epoch(self) -> dict:
        """One epoch over (at most ``limit_train_batches`` batches of) the training set."""
        cfg = self.cfg
        self.model.train()
        # Shuffling depends only on (seed, epoch), so a resumed run sees the same batches.
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.epoch)
        loader = _loader(self.train_ds, cfg.batch_size, True, generator, cfg.num_workers)
        check_every = _CUDA_NAN_CHECK_INTERVAL if self.use_cuda else 1
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        seen, pending = 0, []
        lr = temperature = None
        for step, (images, labels) in enumerate(loader):
            if step >= self.steps_per_epoch:
                break
            images, labels = self._to_device(images, labels)
            temperature = self.temperature.value
            lr = self.optimizer.param_groups[0]["lr"]
            self.temperature.apply(self.dham)
            with self._autocast():
                logits = self.model(images)
                loss = self.loss(logits, labels)
            pending.append((step, loss.detach()))
            if len(pending) >= check_every:
                self._check_losses(pending)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.lr_scheduler.step()
            self.temperature.step()
            loss_sum += loss.detach().double() * labels.shape[0]
            correct += (self.predict(logits.detach()) == labels).sum()
            seen += labels.shape[0]
        self._check_losses(pending)
        return {
            "train_loss": float(loss_sum) / seen,
            "train_acc": float(correct) / seen,
            "temperature": temperature,  # used at the epoch's last step
            "lr": lr,  # used at the epoch's last step
        }

    @torch.no_grad()
    def evaluate(self, dataset) -> float:
        """Accuracy in eval mode (hard WTA activations)."""
        self.model.eval()
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        for images, labels in _loader(dataset, self.cfg.eval_batch_size, False, None, self.cfg.num_workers):
            images, labels = self._to_device(images, labels)
            with self._autocast():
                correct += (self.predict(self.model(images)) == labels).sum()
        return float(correct) / len(dataset)

    @torch.no_grad()
    def multiplications(self) -> dict:
        """Analytic and measured multiplications per image (convolutions), on test images."""
        count = min(_MULTS_BATCH, len(self.test_ds))
        loader = _loader(self.test_ds, count, False, None, self.cfg.num_workers)
        images, _ = self._to_device(*next(iter(loader)))
        result = count_mults(self.model, images)
        return {"mults_analytic": float(result["analytic"]), "mults_measured": float(result["measured"])}

    def fit(self, on_epoch: Callable[[dict, "Trainer"], None] | None = None) -> dict:
        """Train from the current epoch to ``cfg.epochs``; returns the last epoch's metrics.

        After each epoch calls ``on_epoch(metrics, trainer)`` with ``epoch`` (1-based),
        ``train_loss``, ``train_acc``, ``val_acc`` (WTA; absent when the validation split is
        empty, ``val_size=0``), ``temperature``, ``lr``, ``epoch_seconds``; the final epoch adds ``test_acc`` (WTA), ``mults_analytic``,
        ``mults_measured`` and ``num_params``. Raises ``FloatingPointError`` on a NaN/inf loss.
        """
        metrics: dict = {}
        while self.epoch < self.cfg.epochs:
            start = time.perf_counter()
            metrics = self.train_epoch()
            if len(self.val_ds):
                metrics["val_acc"] = self.evaluate(self.val_ds)
            self.epoch += 1
            metrics["epoch"] = self.epoch
            if self.epoch == self.cfg.epochs:
                metrics.update(self.final_metrics())
            metrics["epoch_seconds"] = time.perf_counter() - start
            if on_epoch is not None:
                on_epoch(metrics, self)
        return metrics


def _same(a, b) -> bool:
    """Config values compare as numbers (2 == 2.0) and sequences as tuples ([1, 1] == (1, 1))."""
    if is_number(a) and is_number(b) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


SOURCE_MATCH_KEYS = ("dataset", "arch")
"""Config fields an evaluation (robustness, wins) may set to say what its checkpoints must be:
checked before launch against the source trials' MLflow params (``sweeps.sources``) and in the
trial on the loaded state (:func:`model_from_state`'s ``expect``)."""


def expected_fields(config) -> dict:
    """The :data:`SOURCE_MATCH_KEYS` that ``config`` (a dict or a config object) sets, with
    their values: what an evaluation passes as ``expect``."""
    get = config.get if isinstance(config, dict) else lambda key: getattr(config, key, None)
    return {key: get(key) for key in SOURCE_MATCH_KEYS if get(key) is not None}


def model_from_state(state: dict, expect: dict | None = None) -> tuple[torch.nn.Module, DHAMConfig]:
    """``(model, config)`` rebuilt from a :meth:`Trainer.state_dict` (e.g. a trial's final
    checkpoint, loaded with ``torch.load(..., weights_only=True)``): the network of the saved
    config with the saved weights, on the CPU, in eval mode (hard WTA, DecisiveNets eq. 4).

    ``expect`` (e.g. ``{"arch": "resnet18", "ell": 2}``): config fields the caller relies on;
    a checkpoint whose config disagrees is refused with ``ValueError`` naming the field, the
    checkpoint's value and the expected one (an evaluation must not silently run another
    architecture or group size than its table says)."""
    names = {f.name for f in dataclasses.fields(DHAMConfig)}
    saved = state.get("config") if isinstance(state, dict) else None
    if not isinstance(saved, dict) or "model" not in state:
        raise ValueError("state must be a Trainer.state_dict() with 'config' and 'model' "
                         f"(got keys {sorted(state) if isinstance(state, dict) else type(state)})")
    cfg = DHAMConfig(**{k: v for k, v in saved.items() if k in names})
    for key, value in (expect or {}).items():
        if key not in names:
            raise ValueError(f"expect names an unknown config field {key!r}; allowed: "
                             f"{', '.join(sorted(names))}")
        if not _same(getattr(cfg, key), value):
            raise ValueError(f"checkpoint has {key}={getattr(cfg, key)!r} but the evaluation "
                             f"expects {key}={value!r}")
    cfg.validate()
    num_classes, in_channels = DATASETS[cfg.dataset]
    model = build_model(cfg.arch, num_classes, in_channels, cfg.width, cfg.blocks, cfg.ell,
                        cfg.groups, cfg.placement, cfg.wta, cfg.stage_ell)
    model.load_state_dict(state["model"])
    return model.eval(), cfg
