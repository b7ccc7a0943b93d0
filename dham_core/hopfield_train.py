"""Training the dense associative memory classifier: the one run config, the optimiser, the
trainer, and the classifier trial (Krotov & Hopfield 2016, appendix; docs/krotov_hopfield.md,
"Classifier and training recipe").

* ``HopfieldConfig`` — THE run config of this model family (model, schedule, data, trial
  measures), every default in one place; ``None`` for m and the temperatures means the
  power's row of ``POWER_DEFAULTS`` (``HopfieldConfig.resolved``).
* ``POWER_DEFAULTS``, ``power_defaults``, ``search_window`` — per-power hyper-parameters and
  the paper's search windows.
* ``KrotovOptimizer`` — the paper's normalised momentum step.
* ``HopfieldTrainer`` / ``train_classifier`` — epoch loop with a per-epoch callback, exact resume.
* ``run_classifier`` — one classifier trial: per-epoch metrics, epochs to the error threshold,
  the feature→prototype measures at the last epoch.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass
from typing import Callable

import torch

from dham_core.checks import is_int, is_number, refuse
from dham_core.data import FLAT_DATASETS, FLAT_SPLITS, FlatSplits, load_flat
from dham_core.devices import resolve_device
from dham_core.hopfield_measures import feature_prototype_metrics
from dham_core.hopfield_model import DenseAssociativeMemory, check_power, hopfield_loss, targets_pm1

# ----------------------------------------------------------------------------------------
# Per-power hyper-parameters (docs/krotov_hopfield.md, "Classifier and training recipe" and
# "Readings we chose")
# ----------------------------------------------------------------------------------------

# Published windows: small n (2, 3): m = 2–4, T ramps linearly from T_i ∈ [250, 400] to
# T_f ∈ [30, 100] over the first 200 epochs; large n (20, 30): m ≈ 30, constant T ∈ [500, 700]
# (the author's notebook: n = 20, m = 30, T = 540). The paper gives nothing for n = 4 … 12:
# those rows are ours (chosen on the offline digits by short runs, not published) — search
# them with ``sweeps/hopfield_power.py --search tpe --set power=N``.
POWER_DEFAULTS: dict[int, dict] = {
    2: dict(m=3, t_init=325.0, t_final=65.0, published=True),
    3: dict(m=3, t_init=325.0, t_final=65.0, published=True),
    4: dict(m=4, t_init=350.0, t_final=100.0, published=False),
    6: dict(m=6, t_init=400.0, t_final=200.0, published=False),
    8: dict(m=10, t_init=450.0, t_final=300.0, published=False),
    12: dict(m=20, t_init=500.0, t_final=500.0, published=False),
    20: dict(m=30, t_init=540.0, t_final=540.0, published=True),
    30: dict(m=30, t_init=600.0, t_final=600.0, published=True),
}
"""n -> loss exponent m and temperatures; centre of the paper's window where it has one."""


def power_defaults(power: float) -> dict:
    """The :data:`POWER_DEFAULTS` row of ``power`` (the nearest tabulated n, in log n)."""
    nearest = min(POWER_DEFAULTS, key=lambda n: abs(math.log(n) - math.log(max(power, 1.0))))
    return {k: v for k, v in POWER_DEFAULTS[nearest].items() if k != "published"}


def search_window(power: float) -> dict[str, tuple]:
    """The paper's hyper-parameter window for n (TPE searches inside it): key -> (low, high, kind).

    ``kind`` is "float", "log" or "int". Small n ramp the temperature (t_init, t_final), large n
    keep it constant (``t_const``); lr and momentum windows are the paper's for every n.
    """
    common = {"lr": (0.01, 0.04, "float"), "momentum": (0.6, 0.95, "float")}
    if power <= 3:
        return {"t_init": (250.0, 400.0, "float"), "t_final": (30.0, 100.0, "float"), "m": (2, 4, "int"), **common}
    if power >= 20:
        return {"t_const": (500.0, 700.0, "float"), "m": (20, 40, "int"), **common}
    # not published: a wide window around our row of POWER_DEFAULTS
    row = power_defaults(power)
    return {"t_init": (0.5 * row["t_init"], 1.5 * row["t_init"], "float"),
            "t_final": (0.3 * row["t_final"], 2.0 * row["t_final"], "float"),
            "m": (max(2, row["m"] // 2), 2 * row["m"], "int"), **common}


# ----------------------------------------------------------------------------------------
# The run config
# ----------------------------------------------------------------------------------------

OPTIMIZERS = ("krotov", "adam")


@dataclass
class HopfieldConfig:
    """One classifier run on MNIST-like digits; ``None`` for m / temperatures: :data:`POWER_DEFAULTS`."""

    power: float = 3
    """n, power of the energy F (grid: 2, 3, 4, 6, 8, 12, 20, 30); n = 2 is ReLU-like, n = 30
    prototype-like."""
    rectified: bool = True
    """Rectified polynomial F (the paper's classifier) or the plain power."""
    num_memories: int = 2000
    """K memories (= hidden units of the dual network); paper 2000, the author's notebook 100."""
    m: int | None = None
    """Loss exponent, loss = Σ_α (c_α − t_α)^(2m); paper 2–4 for small n, ≈30 for n = 20, 30.
    None: the power's default."""
    t_const: float | None = None
    """Constant temperature T (sets both t_init and t_final); None: the ramp below."""
    t_init: float | None = None
    """T at epoch 0 (β = 1/Tⁿ); small n 250–400, large n 500–700. None: the power's default."""
    t_final: float | None = None
    """T after the ramp; small n 30–100, equal to t_init for a constant T. None: the power's default."""
    ramp_epochs: int = 200
    """Epochs of the linear temperature ramp from t_init to t_final, then constant (paper: 200 of 3000)."""
    lr: float = 0.02
    """ε₀ (paper window 0.01–0.04); lr at epoch e is ε₀·lr_decay^e."""
    lr_decay: float = 0.998
    """Per-epoch learning-rate factor, in (0, 1] (paper 0.998)."""
    momentum: float = 0.9
    """p of the Krotov update (paper window 0.6–0.95); not used by Adam (default betas)."""
    optimizer: str = "krotov"
    """"krotov" (the paper's normalised momentum step) or "adam" (torch.optim.Adam); both clip ξ to [−1, 1]."""
    epochs: int = 300
    """Training epochs (paper 3000, the author's notebook 300)."""
    batch_size: int = 1000
    """Minibatch size (paper 1000 = 100 per class)."""
    eval_batch_size: int = 2000
    """Batch size of the per-epoch train/eval error passes."""
    init_mean: float = -0.3
    """Mean of the Gaussian memory initialisation (paper −0.3)."""
    init_std: float = 0.3
    """Standard deviation of the initialisation (paper 0.3)."""
    seed: int = 0
    """Seeds the initialisation, the shuffles and the train/validation split."""
    device: str = "cpu"
    """"cpu", "auto" (CUDA if available, else CPU), "cuda", "cuda:N" (the runner sets "cuda" when
    trials get GPUs; every preset names its device)."""
    dataset: str = "mnist_offline"
    """One of dham_core.data.FLAT_DATASETS: the 5,000 offline digits, fashion_mnist, full mnist."""
    data_root: str | None = None
    """Folder of the dataset files (None: the dataset's default place)."""
    download: bool = False
    """Full MNIST: let torchvision download it (needs network)."""
    eval_split: str = "test"
    """"test": train on all training images, evaluate on the test set; "val": hold out a
    validation set (the paper's hyper-parameter search)."""
    val_size: int = 10000
    """Validation images held out with eval_split="val" (full MNIST / Fashion-MNIST)."""
    train_limit: int | None = None
    """Use only the first N training images (smoke runs); None: all."""
    eval_limit: int | None = None
    """Evaluate on only the first N held-out images; None: all."""
    error_threshold: float = 0.02
    """Report the first epoch whose eval error falls below this (paper: 2 %)."""
    vote_cutoff: float = 0.99
    """A memory votes for class α when ξ_α ≥ this (feature→prototype measure)."""
    contribution_ratio: float = 0.9
    """A memory contributes strongly to an image when its energy term ≥ this × the largest."""

    def validate(self) -> "HopfieldConfig":
        """Raise ``ValueError`` naming the field and the allowed values for any bad value."""
        fail = functools.partial(refuse, self)
        if not isinstance(self.rectified, bool):
            fail("rectified", "True or False")
        check_power(self.power, self.rectified)
        for name in ("t_const", "t_init", "t_final"):
            value = getattr(self, name)
            if value is not None and (not is_number(value) or value <= 0):
                fail(name, "a finite number > 0 (or null for the power's default)")
        if self.m is not None and (not is_int(self.m) or self.m < 1):
            fail("m", "an integer >= 1 (or null for the power's default)")
        for name in ("num_memories", "batch_size", "eval_batch_size"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                fail(name, "an integer >= 1")
        for name in ("epochs", "ramp_epochs"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 0:
                fail(name, "an integer >= 0")
        for name in ("lr", "init_std"):
            if not is_number(getattr(self, name)) or getattr(self, name) <= 0:
                fail(name, "a finite number > 0")
        if not is_number(self.lr_decay) or not 0 < self.lr_decay <= 1:
            fail("lr_decay", "a number in (0, 1]")
        if not is_number(self.momentum) or not 0 <= self.momentum < 1:
            fail("momentum", "a number in [0, 1)")
        if not is_number(self.init_mean):
            fail("init_mean", "a finite number")
        if self.optimizer not in OPTIMIZERS:
            fail("optimizer", f"one of {OPTIMIZERS}")
        if not is_int(self.seed):
            fail("seed", "an integer")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                fail("device", '"auto" or a torch device string ("cpu", "cuda", "cuda:0")')
        if self.dataset not in FLAT_DATASETS:
            fail("dataset", f"one of {FLAT_DATASETS}")
        if self.eval_split not in FLAT_SPLITS:
            fail("eval_split", f"one of {FLAT_SPLITS}")
        for name in ("train_limit", "eval_limit"):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or value < 10):
                fail(name, "an integer >= 10 (or null for all images)")
        if not is_number(self.error_threshold) or not 0 < self.error_threshold < 1:
            fail("error_threshold", "a number in (0, 1)")
        if not is_number(self.vote_cutoff) or not 0 < self.vote_cutoff <= 1:
            fail("vote_cutoff", "a number in (0, 1]")
        if not is_number(self.contribution_ratio) or not 0 < self.contribution_ratio <= 1:
            fail("contribution_ratio", "a number in (0, 1]")
        return self

    def resolved(self) -> "HopfieldConfig":
        """This config with m, t_init and t_final filled in (``t_const`` sets both ends; the
        power's :data:`POWER_DEFAULTS` row where still ``None``)."""
        row = power_defaults(self.power)
        t_init = self.t_const if self.t_const is not None else self.t_init
        t_final = self.t_const if self.t_const is not None else self.t_final
        return dataclasses.replace(self, m=self.m if self.m is not None else row["m"],
                                   t_init=float(t_init if t_init is not None else row["t_init"]),
                                   t_final=float(t_final if t_final is not None else row["t_final"]))

    def temperature_at(self, epoch: int) -> float:
        """Linear ramp from t_init to t_final over the first ``ramp_epochs`` epochs, then constant."""
        cfg = self.resolved()
        if self.ramp_epochs == 0:
            return float(cfg.t_final)
        frac = min(epoch / self.ramp_epochs, 1.0)
        return cfg.t_init + (cfg.t_final - cfg.t_init) * frac

    def lr_at(self, epoch: int) -> float:
        return self.lr * self.lr_decay ** epoch


# ----------------------------------------------------------------------------------------
# Optimiser and trainer
# ----------------------------------------------------------------------------------------


class KrotovOptimizer(torch.optim.Optimizer):
    """The paper's update: ``V ← pV − ∂C/∂ξ``; ``ξ^μ ← ξ^μ + ε V^μ / max_J |V^μ_J|``; clip.

    The step is normalised per memory (each row's largest change is exactly ``lr``), so the
    scale of the loss does not matter. Parameters are clipped to ``[−clip, clip]``.
    """

    def __init__(self, params, lr: float, momentum: float = 0.6, clip: float = 1.0) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0 (got lr={lr!r})")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1) (got momentum={momentum!r})")
        super().__init__(params, {"lr": lr, "momentum": momentum, "clip": clip})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p)
                v = state["velocity"]
                v.mul_(group["momentum"]).sub_(p.grad)
                rows = v if v.dim() > 1 else v[None]
                top = rows.abs().amax(-1, keepdim=True).clamp(min=torch.finfo(v.dtype).tiny)
                p.add_((group["lr"] * rows / top).view_as(p))
                if group["clip"] is not None:
                    p.clamp_(-group["clip"], group["clip"])
        return loss


def _check_data(data) -> FlatSplits:
    try:
        data = FlatSplits(*(data[k] for k in FlatSplits._fields)) if isinstance(data, dict) else FlatSplits(*data)
    except (KeyError, TypeError) as err:
        raise ValueError("data must be FlatSplits(train_x, train_y, test_x, test_y), a 4-tuple "
                         f"or a dict with those keys ({err})") from None
    for x, y, name in ((data.train_x, data.train_y, "train"), (data.test_x, data.test_y, "test")):
        if x.dim() != 2 or y.dim() != 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(f"data.{name}_x must be (B, D) and data.{name}_y (B,) with B >= 1 "
                             f"(got {tuple(x.shape)} and {tuple(y.shape)})")
    if data.train_x.shape[1] != data.test_x.shape[1]:
        raise ValueError("data.train_x and data.test_x must have the same width")
    return data


class HopfieldTrainer:
    """Model, optimiser, temperature/LR schedules and the epoch loop; resumable exactly.

    Shuffling depends only on (seed, epoch), so ``load_state_dict`` of a checkpoint taken
    after epoch e and training on gives the same memories as an uninterrupted run.
    """

    def __init__(self, cfg: HopfieldConfig, data) -> None:
        self.cfg = cfg = cfg.validate().resolved()
        self.device = resolve_device(cfg.device)
        data = _check_data(data)
        self.train_x, self.test_x = (t.to(self.device, torch.float32) for t in (data.train_x, data.test_x))
        self.train_y, self.test_y = (t.to(self.device, torch.long) for t in (data.train_y, data.test_y))
        self.num_classes = int(max(int(data.train_y.max()), int(data.test_y.max()))) + 1
        gen = torch.Generator().manual_seed(cfg.seed)
        self.model = DenseAssociativeMemory(self.train_x.shape[1], self.num_classes, cfg.num_memories, cfg.power,
                                            cfg.temperature_at(0), cfg.rectified, generator=gen,
                                            init_mean=cfg.init_mean, init_std=cfg.init_std).to(self.device)
        if cfg.optimizer == "krotov":
            self.optimizer = KrotovOptimizer(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        else:
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.epoch = 0  # completed epochs

    def state_dict(self) -> dict:
        """``model`` (``model.memories`` (K, D + C), pixels first), ``optimizer``, ``epoch``, ``config``."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "epoch": self.epoch, "config": dataclasses.asdict(self.cfg)}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (load it with ``torch.load(..., weights_only=True)``)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = int(state["epoch"])

    @torch.no_grad()
    def error(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Classification error (arg-max of c) at the current temperature."""
        wrong = 0
        for b0 in range(0, x.shape[0], self.cfg.eval_batch_size):
            out = self.model(x[b0:b0 + self.cfg.eval_batch_size])
            wrong += int((out.argmax(1) != y[b0:b0 + self.cfg.eval_batch_size]).sum())
        return wrong / x.shape[0]

    def train_epoch(self) -> dict:
        cfg, model = self.cfg, self.model
        model.temperature = cfg.temperature_at(self.epoch)
        lr = cfg.lr_at(self.epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        order = torch.randperm(self.train_x.shape[0], generator=torch.Generator().manual_seed(
            cfg.seed * 1_000_003 + self.epoch)).to(self.device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        for b0 in range(0, order.numel(), cfg.batch_size):
            idx = order[b0:b0 + cfg.batch_size]
            out = model(self.train_x[idx])
            loss = hopfield_loss(out, targets_pm1(self.train_y[idx], self.num_classes, out.dtype), cfg.m)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if cfg.optimizer == "adam":
                with torch.no_grad():
                    model.memories.clamp_(-1, 1)
            loss_sum += loss.detach().double()
        loss_value = float(loss_sum) / order.numel()
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"training loss became {loss_value} at epoch {self.epoch + 1} (1-based)")
        return {"loss": loss_value, "temperature": model.temperature, "lr": lr}

    def fit(self, on_epoch: Callable[[dict, "HopfieldTrainer"], object] | None = None) -> dict:
        """Train from the current epoch to ``cfg.epochs``; returns the last epoch's metrics.

        After each epoch calls ``on_epoch(metrics, trainer)`` with ``epoch`` (1-based),
        ``train_error``, ``test_error`` (full passes after the epoch's updates), ``temperature``
        and ``lr`` (used during the epoch), ``loss`` (mean per image) and ``epoch_seconds``.
        A truthy return value from ``on_epoch`` stops training early.
        """
        metrics: dict = {}
        while self.epoch < self.cfg.epochs:
            start = time.perf_counter()
            metrics = self.train_epoch()
            metrics["train_error"] = self.error(self.train_x, self.train_y)
            metrics["test_error"] = self.error(self.test_x, self.test_y)
            self.epoch += 1
            metrics["epoch"] = self.epoch
            metrics["epoch_seconds"] = time.perf_counter() - start
            if on_epoch is not None and on_epoch(metrics, self):
                break
        return metrics


def train_classifier(cfg: HopfieldConfig, data, on_epoch: Callable[[dict, HopfieldTrainer], object] | None = None,
                     state: dict | None = None) -> HopfieldTrainer:
    """Train a classifier (``HopfieldTrainer.fit``), optionally resuming from ``state``.

    ``data``: ``FlatSplits`` / 4-tuple / dict of train_x (B, D) in [−1, 1], train_y, test_x,
    test_y. Returns the trainer (``.model``, ``.state_dict()``).
    """
    trainer = HopfieldTrainer(cfg, data)
    if state is not None:
        trainer.load_state_dict(state)
    trainer.fit(on_epoch)
    return trainer


# ----------------------------------------------------------------------------------------
# The classifier trial
# ----------------------------------------------------------------------------------------

PROGRESS_KEY = "progress"


def load_classifier_data(cfg: HopfieldConfig) -> FlatSplits:
    """The config's flat dataset and split, cut to ``train_limit`` / ``eval_limit`` images."""
    data = load_flat(cfg.dataset, cfg.data_root, cfg.download, cfg.seed, cfg.eval_split, cfg.val_size)
    train, held = slice(None, cfg.train_limit), slice(None, cfg.eval_limit)
    return FlatSplits(data.train_x[train], data.train_y[train], data.test_x[held], data.test_y[held])


def run_classifier(cfg: HopfieldConfig, on_epoch: Callable[[dict, dict], object], state: dict | None = None) -> None:
    """Train one classifier, calling ``on_epoch(metrics, checkpoint_state)`` after every epoch.

    ``metrics``: ``epoch, train_error, eval_error`` (+ ``test_error`` or ``val_error``, as the
    split says), ``temperature, lr, loss, epoch_seconds, best_eval_error`` and, once reached,
    ``epochs_to_threshold``; the last epoch adds ``reached_threshold`` and the feature→prototype
    histograms (``hopfield_measures.feature_prototype_metrics``) on the held-out images.
    ``checkpoint_state``: the trainer state plus ``progress``; pass it back as ``state`` to resume.
    """
    trainer = HopfieldTrainer(cfg, load_classifier_data(cfg))
    progress = {"best": 1.0, "reached": -1}
    if state is not None:
        trainer.load_state_dict(state)
        progress = dict(state[PROGRESS_KEY])
    split_key = "test_error" if cfg.eval_split == "test" else "val_error"

    def epoch_done(metrics: dict, t: HopfieldTrainer):
        error = metrics.pop("test_error")
        progress["best"] = min(progress["best"], error)
        if progress["reached"] < 0 and error < cfg.error_threshold:
            progress["reached"] = metrics["epoch"]
        out = {**metrics, "eval_error": error, split_key: error, "best_eval_error": progress["best"]}
        if progress["reached"] > 0:
            out["epochs_to_threshold"] = progress["reached"]
        if metrics["epoch"] == cfg.epochs:
            out.update(feature_prototype_metrics(t.model, t.test_x, cfg.vote_cutoff, cfg.contribution_ratio))
            out["reached_threshold"] = float(progress["reached"] > 0)
        return on_epoch(out, {**t.state_dict(), PROGRESS_KEY: dict(progress)})

    trainer.fit(on_epoch=epoch_done)
