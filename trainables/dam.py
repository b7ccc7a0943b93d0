"""Ray Tune trainables for the dense associative memory (Krotov & Hopfield, PAPERS.md §3) and the
clique memory (Gripon & Berrou, PAPERS.md §4).

* :func:`train_dam_classifier` — the MNIST (or offline digits) classifier of one power n:
  per-epoch train/eval error, temperature, lr, loss with a checkpoint; epochs until the error
  first falls below 2 %; at the end the feature→prototype measures (how many classes each
  memory votes for; how many memories contribute strongly per test image) as metrics, and the
  memories themselves in the checkpoint state (``state["model"]["memories"]``, (K, 784 + 10),
  pixels first).
* :func:`dam_capacity_pack` — one trial = a pack of capacity cells (N, K, n, rectified) over a
  block of random memory sets, vectorised by ``dham_core.dam``; one report per cell (also the
  3-unit XOR with 4 memories).
* :func:`clique_capacity_pack` — one trial = a stream of stored messages with the retrieval
  error measured at every M checkpoint for each iteration count; one report per cell.
* :func:`dam_adversarial_transfer` — trains an n = 2 and an n = 8 model, attacks each by
  input-gradient steps and classifies every adversarial set by both (the slides' 2×2 table).

Trainables never touch MLflow: the runner's driver-side callback logs every reported metric.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass, field

import torch

from dham_core import clique_memory as cm
from dham_core import dam
from dham_core.checks import is_number, refuse
from dham_core.data import FLAT_DATASETS, FLAT_SPLITS, load_flat
from trainables.common import (
    FAULT_KEY,
    config_to_dataclass,
    inject_fault,
    load_state,
    report,
)

# ----------------------------------------------------------------------------------------
# Per-power hyper-parameters of the classifier (PAPERS.md §3, "Training recipe")
# ----------------------------------------------------------------------------------------

# Published windows: small n (2, 3): m = 2–4, T ramps linearly from T_i ∈ [250, 400] to
# T_f ∈ [30, 100] over the first 200 epochs; large n (20, 30): m ≈ 30, constant T ∈ [500, 700]
# (the author's notebook: n = 20, m = 30, T = 540). The paper gives nothing for n = 4 … 12:
# those rows are ours (chosen on the offline digits by short runs, not published) — search
# them with ``sweeps/dam_power.py --search tpe --set power=N``.
POWER_DEFAULTS: dict[int, dict] = {
    2: dict(m=3, temperature_initial=325.0, temperature_final=65.0, published=True),
    3: dict(m=3, temperature_initial=325.0, temperature_final=65.0, published=True),
    4: dict(m=4, temperature_initial=350.0, temperature_final=100.0, published=False),
    6: dict(m=6, temperature_initial=400.0, temperature_final=200.0, published=False),
    8: dict(m=10, temperature_initial=450.0, temperature_final=300.0, published=False),
    12: dict(m=20, temperature_initial=500.0, temperature_final=500.0, published=False),
    20: dict(m=30, temperature_initial=540.0, temperature_final=540.0, published=True),
    30: dict(m=30, temperature_initial=600.0, temperature_final=600.0, published=True),
}
"""n -> loss exponent m and temperatures; centre of the paper's window where it has one."""


def power_defaults(power: float) -> dict:
    """The :data:`POWER_DEFAULTS` row of ``power`` (the nearest tabulated n, in log n)."""
    nearest = min(POWER_DEFAULTS, key=lambda n: abs(math.log(n) - math.log(max(power, 1.0))))
    return {k: v for k, v in POWER_DEFAULTS[nearest].items() if k != "published"}


def search_window(power: float) -> dict[str, tuple]:
    """The paper's hyper-parameter window for n (TPE searches inside it): key -> (low, high, kind).

    ``kind`` is "float", "log" or "int". Small n ramp the temperature (T_i, T_f), large n keep
    it constant (``temperature``); lr and momentum windows are the paper's for every n.
    """
    common = {"lr": (0.01, 0.04, "float"), "momentum": (0.6, 0.95, "float")}
    if power <= 3:
        return {"temperature_initial": (250.0, 400.0, "float"), "temperature_final": (30.0, 100.0, "float"),
                "m": (2, 4, "int"), **common}
    if power >= 20:
        return {"temperature": (500.0, 700.0, "float"), "m": (20, 40, "int"), **common}
    # not published: a wide window around our row of POWER_DEFAULTS
    row = power_defaults(power)
    return {"temperature_initial": (0.5 * row["temperature_initial"], 1.5 * row["temperature_initial"], "float"),
            "temperature_final": (0.3 * row["temperature_final"], 2.0 * row["temperature_final"], "float"),
            "m": (max(2, row["m"] // 2), 2 * row["m"], "int"), **common}


# ----------------------------------------------------------------------------------------
# Feature -> prototype measures (PAPERS.md §3, "Published results"; the paper's Fig. 3)
# ----------------------------------------------------------------------------------------

CONTRIBUTOR_BINS = ((0, 0), (1, 1), (2, 2), (3, 4), (5, 8), (9, 16), (17, 32), (33, 64), (65, None))
"""Bins of the per-image number of strongly contributing memories (inclusive; None = no top)."""


def bin_name(low: int, high: int | None) -> str:
    return str(low) if high == low else f"{low}_{'inf' if high is None else high}"


def memory_votes(memories: torch.Tensor, num_classes: int, cutoff: float = 0.99) -> torch.Tensor:
    """Per memory, the number of classes it votes for: label weights ξ^μ_α ≥ ``cutoff`` (K,).

    The paper counts "recognition connections" in the on state (ξ_α ≈ 1) with an arbitrary
    cutoff: features vote for several classes (small n), prototypes for one (large n).
    """
    return (memories[:, -num_classes:] >= cutoff).sum(1)


@torch.no_grad()
def strong_contributors(model: dam.DenseAssociativeMemory, v: torch.Tensor, ratio: float = 0.9,
                        batch_size: int = 2000) -> torch.Tensor:
    """Per image, the number of memories whose energy contribution is ≥ ``ratio`` × the largest (B,).

    The contribution of memory μ is ``F(ξ^μ · σ)`` in the state σ the classifier completes:
    the image v with the classification units at the ±1 code of the predicted class. F is
    evaluated on overlaps divided by each row's largest |overlap| (F is homogeneous, so the
    ratios are unchanged and nothing overflows at n = 30). 0 when no memory contributes (> 0).
    """
    out = []
    memories = model.memories.detach()
    n = model.power
    for b0 in range(0, v.shape[0], batch_size):
        x = v[b0:b0 + batch_size].to(memories)
        pred = model(x).argmax(1)
        sigma = torch.cat([x, dam.targets_pm1(pred, model.num_classes, x.dtype)], 1)
        h = (sigma @ memories.T).double()
        h = h / h.abs().amax(1, keepdim=True).clamp(min=1e-30)
        f = dam.energy_fn(h, n, model.rectified)
        top = f.amax(1, keepdim=True)
        out.append(((f >= ratio * top) & (f > 0) & (top > 0)).sum(1))
    return torch.cat(out)


def feature_prototype_metrics(model: dam.DenseAssociativeMemory, v: torch.Tensor, cutoff: float = 0.99,
                              ratio: float = 0.9) -> dict[str, float]:
    """Histogram bins (fractions) of :func:`memory_votes` and :func:`strong_contributors`."""
    votes = memory_votes(model.memories.detach(), model.num_classes, cutoff)
    counts = strong_contributors(model, v, ratio)
    metrics = {f"votes_frac_{k}": float((votes == k).float().mean()) for k in range(model.num_classes + 1)}
    metrics["single_class_frac"] = metrics["votes_frac_1"]
    for low, high in CONTRIBUTOR_BINS:
        inside = (counts >= low) if high is None else (counts >= low) & (counts <= high)
        metrics[f"contrib_frac_{bin_name(low, high)}"] = float(inside.float().mean())
    metrics["single_contributor_frac"] = float((counts == 1).float().mean())
    metrics["contributors_median"] = float(counts.double().median())
    metrics["contributors_mean"] = float(counts.double().mean())
    return metrics


# ----------------------------------------------------------------------------------------
# (1) The classifier trainable
# ----------------------------------------------------------------------------------------

PROGRESS_KEY = "progress"


@dataclass
class DAMTrialConfig:
    """One MNIST (or offline) classifier trial; ``None`` temperatures/m take :data:`POWER_DEFAULTS`."""

    power: float = 3
    """n, power of the rectified polynomial energy (grid: 2, 3, 4, 6, 8, 12, 20, 30)."""
    rectified: bool = True
    """Rectified polynomial (the paper's classifier) or the plain power."""
    num_memories: int = 2000
    """K memories (= hidden units of the dual network); paper 2000."""
    m: int | None = None
    """Loss exponent, loss = Σ (c − t)^(2m); None: the n's default."""
    temperature: float | None = None
    """Constant temperature T (sets both ends of the ramp); None: the ramp below."""
    temperature_initial: float | None = None
    """T at epoch 0; None: the n's default."""
    temperature_final: float | None = None
    """T after the ramp; None: the n's default."""
    ramp_epochs: int = 200
    """Epochs of the linear temperature ramp (paper: 200 of 3000)."""
    lr: float = 0.02
    """ε₀ (paper window 0.01–0.04); lr at epoch e is ε₀·lr_decay^e."""
    lr_decay: float = 0.998
    """Per-epoch learning-rate factor (paper 0.998)."""
    momentum: float = 0.9
    """p of the Krotov update (paper window 0.6–0.95)."""
    optimizer: str = "krotov"
    """"krotov" (the paper's normalised momentum step) or "adam"."""
    epochs: int = 300
    """Training epochs (paper 3000)."""
    batch_size: int = 1000
    """Minibatch size (paper 1000 = 100 per class)."""
    eval_batch_size: int = 2000
    """Batch size of the error passes."""
    init_mean: float = -0.3
    """Mean of the Gaussian memory initialisation (paper −0.3)."""
    init_std: float = 0.3
    """Standard deviation of the initialisation (paper 0.3)."""
    seed: int = 0
    """Seeds the initialisation, the shuffles and the train/validation split."""
    device: str = "auto"
    """"auto", "cpu", "cuda", "cuda:N"."""
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

    def validate(self) -> "DAMTrialConfig":
        fail = functools.partial(refuse, self)
        number = is_number

        if not number(self.power) or self.power < 1:
            fail("power", "a number >= 1")
        for name in ("temperature", "temperature_initial", "temperature_final"):
            value = getattr(self, name)
            if value is not None and (not number(value) or value <= 0):
                fail(name, "a finite number > 0 (or null for the power's default)")
        if self.m is not None and (not isinstance(self.m, int) or isinstance(self.m, bool) or self.m < 1):
            fail("m", "an integer >= 1 (or null for the power's default)")
        if self.dataset not in FLAT_DATASETS:
            fail("dataset", f"one of {FLAT_DATASETS}")
        if self.eval_split not in FLAT_SPLITS:
            fail("eval_split", f"one of {FLAT_SPLITS}")
        for name in ("train_limit", "eval_limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 10):
                fail(name, "an integer >= 10 (or null for all images)")
        if not number(self.error_threshold) or not 0 < self.error_threshold < 1:
            fail("error_threshold", "a number in (0, 1)")
        if not number(self.vote_cutoff) or not 0 < self.vote_cutoff <= 1:
            fail("vote_cutoff", "a number in (0, 1]")
        if not number(self.contribution_ratio) or not 0 < self.contribution_ratio <= 1:
            fail("contribution_ratio", "a number in (0, 1]")
        self.dam_config().validate()
        return self

    def dam_config(self) -> dam.DAMConfig:
        """The core's config with the per-power defaults filled in."""
        row = power_defaults(self.power)
        t_init = self.temperature if self.temperature is not None else self.temperature_initial
        t_final = self.temperature if self.temperature is not None else self.temperature_final
        names = {f.name for f in dataclasses.fields(dam.DAMConfig)}
        values = {k: v for k, v in dataclasses.asdict(self).items() if k in names}
        values.update(m=self.m if self.m is not None else row["m"],
                      temperature_initial=float(t_init if t_init is not None else row["temperature_initial"]),
                      temperature_final=float(t_final if t_final is not None else row["temperature_final"]))
        return dam.DAMConfig(**values)


def validate_classifier(config: dict) -> None:
    """Raise ValueError naming the field and the allowed values for a bad classifier trial config."""
    config_to_dataclass(DAMTrialConfig, config, ignore=(FAULT_KEY,)).validate()


def classifier_data(cfg: DAMTrialConfig) -> dam.ClassificationData:
    data = load_flat(cfg.dataset, cfg.data_root, cfg.download, cfg.seed, cfg.eval_split, cfg.val_size)
    train = slice(None, cfg.train_limit)
    held = slice(None, cfg.eval_limit)
    return dam.ClassificationData(data.train_x[train], data.train_y[train], data.test_x[held], data.test_y[held])


def train_dam_classifier(config: dict) -> None:
    """Per epoch: ``epoch, train_error, eval_error`` (+ ``test_error`` or ``val_error``, as the
    split says), ``temperature, lr, loss, epoch_seconds, best_eval_error`` and, once reached,
    ``epochs_to_threshold``; the checkpoint holds the trainer state. The last epoch adds the
    feature→prototype histograms (:func:`feature_prototype_metrics`) on the held-out images.
    """
    cfg = config_to_dataclass(DAMTrialConfig, config, ignore=(FAULT_KEY,)).validate()
    trainer = dam.DAMTrainer(cfg.dam_config(), classifier_data(cfg))
    state = load_state()
    progress = {"best": 1.0, "reached": -1}
    if state is not None:
        trainer.load_state_dict(state)
        progress = dict(state[PROGRESS_KEY])
    split_key = "test_error" if cfg.eval_split == "test" else "val_error"

    def on_epoch(metrics: dict, t: dam.DAMTrainer) -> None:
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
        inject_fault(config, metrics["epoch"], state is not None, out)
        report(out, {**t.state_dict(), PROGRESS_KEY: dict(progress)})

    trainer.fit(on_epoch=on_epoch)


# ----------------------------------------------------------------------------------------
# (2) DAM capacity packs (PAPERS.md §3, "Capacity")
# ----------------------------------------------------------------------------------------

CAPACITY_EXPERIMENTS = ("one_step", "half_recall", "random_starts", "xor")

XOR_TABLE = ((-1, -1, -1), (-1, 1, 1), (1, -1, 1), (1, 1, -1))
"""PAPERS.md §3 XOR: units (x, y, z) with z = XOR(x, y) in ±1 code; the 4 rows are the memories."""


def xor_outputs(power: int, rectified: bool) -> torch.Tensor:
    """The XOR test: clamp (x, y) of each truth-table row, start z at −1 and at +1, run the
    dynamics with the 4 rows as memories (K = 4 > N = 3); returns the 8 final z values, rows
    repeated for z starting at −1 then +1."""
    table = torch.tensor(XOR_TABLE, dtype=torch.float64)
    starts = torch.cat([table[:, :2].repeat(2, 1), torch.tensor([[-1.0]] * 4 + [[1.0]] * 4, dtype=torch.float64)], 1)
    result = dam.retrieve(table, starts, power, rectified, clamped=torch.tensor([True, True, False]))
    return result.spins[:, 2]


def _int_list(values) -> bool:
    return isinstance(values, (list, tuple)) and len(values) > 0 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in values)


@dataclass
class CapacityPackConfig:
    """One capacity trial: one experiment over a block of random memory sets.

    Memory set j of trial seed s is ``dam.random_memories(s·sets + j, …)`` (sets = the
    experiment's ``*_sets``), so trials with different seeds hold disjoint sets and their counts
    pool exactly.
    """

    experiment: str = "one_step"
    """"one_step" (per-bit error vs K), "half_recall" (K where half the memories are perfect, vs N),
    "random_starts" (fraction of random starts ending in a stored memory) or "xor" (the 3-unit
    XOR with 4 memories)."""
    rectified: list = field(default_factory=lambda: [False, True])
    """Energies measured side by side: plain power (False) and rectified polynomial (True)."""
    num_probes: int = 100
    """one_step / half_recall: stored memories probed per set (the first min(probes, K))."""
    one_step_neurons: int = 100
    """(a) N."""
    one_step_powers: list = field(default_factory=lambda: [2, 3, 4])
    """(a) powers n."""
    one_step_memories: list | None = None
    """(a) K values for every n; None: ``one_step_points`` K per n spread (log) over the range
    where the paper's P_err formula lies in ``one_step_range``."""
    one_step_range: list = field(default_factory=lambda: [3e-4, 0.1])
    """(a) [low, high] of the formula's P_err defining the automatic K range."""
    one_step_points: int = 8
    """(a) K values per n in the automatic range."""
    one_step_sets: int = 64
    """(a) random memory sets per trial (enough for >= 50 errors where P_err >= 1e-3 at small K)."""
    half_recall_neurons: list = field(default_factory=lambda: [50, 71, 100, 141, 200])
    """(b) N values."""
    half_recall_powers: list = field(default_factory=lambda: [2, 3, 4, 5])
    """(b) powers n."""
    half_recall_growth: float = 1.03
    """(b) K checkpoints grow geometrically by this factor."""
    half_recall_max_memories: int | None = None
    """(b) stop streaming at this K (a cell not crossed by then reports a lower bound); None: 4×
    the largest perfect-recall formula value + 100."""
    half_recall_sets: int = 8
    """(b) random memory sets per trial."""
    random_start_neurons: int = 100
    """(c) N (paper 100)."""
    random_start_memories: int = 2000
    """(c) K (paper 2000)."""
    random_start_powers: list = field(default_factory=lambda: [2, 3, 4, 5, 6])
    """(c) powers n."""
    random_starts: int = 1000
    """(c) random start states per memory set (paper: 10,000 in all)."""
    random_start_sets: int = 10
    """(c) random memory sets per trial."""
    max_sweeps: int = 100
    """(c) asynchronous passes before a start counts as not converged."""
    xor_powers: list = field(default_factory=lambda: [1, 2, 3, 4])
    """(d) powers n of the XOR test."""
    seed: int = 0
    """Trial seed: selects the block of memory sets."""
    device: str = "cpu"
    """"cpu", "cuda", "auto"."""

    def validate(self) -> "CapacityPackConfig":
        fail = functools.partial(refuse, self)

        if self.experiment not in CAPACITY_EXPERIMENTS:
            fail("experiment", f"one of {CAPACITY_EXPERIMENTS}")
        if not isinstance(self.rectified, (list, tuple)) or not self.rectified or not all(
                isinstance(r, bool) for r in self.rectified):
            fail("rectified", "a non-empty list of true/false")
        for name in ("one_step_sets", "half_recall_sets", "random_start_sets", "num_probes", "one_step_points",
                     "random_starts", "max_sweeps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(name, "an integer >= 1")
        for name in ("one_step_neurons", "random_start_neurons"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 2:
                fail(name, "an integer >= 2")
        if not _int_list(self.half_recall_neurons) or min(self.half_recall_neurons) < 2:
            fail("half_recall_neurons", "a non-empty list of integers >= 2")
        for name in ("one_step_powers", "half_recall_powers", "random_start_powers", "xor_powers"):
            if not _int_list(getattr(self, name)) or min(getattr(self, name)) < 1:
                fail(name, "a non-empty list of integer powers >= 1")
        if self.one_step_memories is not None and (not _int_list(self.one_step_memories)
                                                   or min(self.one_step_memories) < 1):
            fail("one_step_memories", "null or a non-empty list of integers K >= 1")
        if not isinstance(self.random_start_memories, int) or self.random_start_memories < 1:
            fail("random_start_memories", "an integer K >= 1")
        low_high = self.one_step_range
        if (not isinstance(low_high, (list, tuple)) or len(low_high) != 2
                or not 0 < float(low_high[0]) < float(low_high[1]) < 1):
            fail("one_step_range", "[low, high] with 0 < low < high < 1")
        if not isinstance(self.half_recall_growth, (int, float)) or not self.half_recall_growth > 1:
            fail("half_recall_growth", "a number > 1")
        if self.half_recall_max_memories is not None and (
                not isinstance(self.half_recall_max_memories, int) or self.half_recall_max_memories < 1):
            fail("half_recall_max_memories", "null or an integer >= 1")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            fail("seed", "an integer >= 0")
        if self.device not in ("cpu", "auto") and not str(self.device).startswith("cuda"):
            fail("device", '"cpu", "auto" or "cuda[:N]"')
        return self

    def seeds(self) -> list[int]:
        """The memory-set seeds of this trial's experiment."""
        sets = {"one_step": self.one_step_sets, "half_recall": self.half_recall_sets,
                "random_starts": self.random_start_sets, "xor": 1}[self.experiment]
        return [self.seed * sets + j for j in range(sets)]


def validate_capacity(config: dict) -> None:
    config_to_dataclass(CapacityPackConfig, config, ignore=(FAULT_KEY,)).validate()


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def memories_for_error(num_neurons: int, power: int, p_err: float) -> float:
    """K at which the paper's P_err formula equals ``p_err`` (it grows with K): bisection in log K."""
    lo, hi = 1e-3, 1e12
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if dam.one_step_error_probability(num_neurons, mid, power) < p_err:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def one_step_memories(cfg: CapacityPackConfig, power: int) -> list[int]:
    """The K values of experiment (a) for ``power``."""
    if cfg.one_step_memories is not None:
        return sorted(set(cfg.one_step_memories))
    low, high = (memories_for_error(cfg.one_step_neurons, power, p) for p in cfg.one_step_range)
    points = cfg.one_step_points
    ks = {max(1, round(low * (high / low) ** (i / max(points - 1, 1)))) for i in range(points)}
    return sorted(ks)


class _CellReporter:
    """Reports one Tune result per cell, numbering the cells; the metric ``cells_done`` rides along."""

    def __init__(self, config: dict):
        self.config, self.done, self.started = config, 0, time.perf_counter()

    def __call__(self, metrics: dict, final: dict | None = None) -> None:
        self.done += 1
        out = {**metrics, "cells_done": self.done, "pack_seconds": time.perf_counter() - self.started}
        if final:
            out.update(final)
        inject_fault(self.config, self.done, False, out)
        report(out)


def dam_capacity_pack(config: dict) -> None:
    """Cells (metrics ``N, K, n, rect`` are the coordinates; rect 1 = rectified energy):

    * one_step: ``errors`` (unstable bits), ``bits`` (observed), ``rate``, ``formula`` (P_err);
    * half_recall: ``k_half`` or ``k_half_lower_bound`` (not crossed by the cap), ``k_formula``
      (perfect-recall ``N^(n−1)/(2(2n−3)!! ln N)``);
    * random_starts: ``stored``, ``negated``, ``converged`` (fractions), ``starts``;
    * xor: ``correct`` (of the 8 presentations: 4 inputs × z starting at ±1), ``solved`` (all 8).
    The last cell adds the pack's aggregate (``worst_log2_ratio`` for one_step, …).
    """
    cfg = config_to_dataclass(CapacityPackConfig, config, ignore=(FAULT_KEY,)).validate()
    device = _device(cfg.device)
    seeds = cfg.seeds()
    cell = _CellReporter(config)
    if cfg.experiment == "one_step":
        n_neurons = cfg.one_step_neurons
        rows = []
        for power in cfg.one_step_powers:
            curve = dam.one_step_error(n_neurons, one_step_memories(cfg, power), power, list(cfg.rectified),
                                       seeds, cfg.num_probes, device)
            for row, (n, rect) in enumerate(curve.configs):
                for col, k in enumerate(curve.num_memories):
                    formula = dam.one_step_error_probability(n_neurons, k, int(n))
                    rows.append(dict(N=n_neurons, K=k, n=n, rect=float(rect), errors=int(curve.errors[row, col]),
                                     bits=int(curve.trials[row, col]), rate=float(curve.rate[row, col]),
                                     formula=formula, memory_sets=len(seeds)))
        checked = [abs(math.log2(r["rate"] / r["formula"])) for r in rows
                   if not r["rect"] and r["formula"] >= 1e-3 and r["errors"] >= 50]
        final = {"worst_log2_ratio": max(checked) if checked else 0.0, "checked_cells": len(checked)}
    elif cfg.experiment == "half_recall":
        rows = []
        for n_neurons in cfg.half_recall_neurons:
            cap = cfg.half_recall_max_memories
            auto = int(4 * max(dam.perfect_recall_capacity(n_neurons, p) for p in cfg.half_recall_powers)) + 100
            cap = auto if cap is None else min(cap, auto)
            found = dam.half_recall_capacity(n_neurons, list(cfg.half_recall_powers), list(cfg.rectified), seeds,
                                             cfg.num_probes, cfg.half_recall_growth, cap, device)
            for (n, rect), k_half in found.items():
                row = dict(N=n_neurons, n=n, rect=float(rect), memory_sets=len(seeds),
                           k_formula=dam.perfect_recall_capacity(n_neurons, int(n)))
                if math.isnan(k_half):
                    row["k_half_lower_bound"] = float(cap)
                else:
                    row["k_half"] = k_half
                rows.append(row)
        ratios = [math.log(r["k_half"] / r["k_formula"]) for r in rows if "k_half" in r]
        final = {"mean_log_ratio_to_formula": sum(ratios) / len(ratios) if ratios else 0.0}
    elif cfg.experiment == "xor":
        target = -torch.tensor([row[0] * row[1] for row in XOR_TABLE] * 2, dtype=torch.float64)
        rows = []
        for power in cfg.xor_powers:
            for rect in cfg.rectified:
                if not rect and power != int(power):
                    continue
                correct = int((xor_outputs(power, rect) == target).sum())
                rows.append(dict(N=3, K=4, n=power, rect=float(rect), correct=correct, presentations=8,
                                 solved=float(correct == 8)))
        final = {"solved_count": sum(r["solved"] for r in rows)}
    else:
        result = dam.random_start_recall(cfg.random_start_neurons, cfg.random_start_memories,
                                         list(cfg.random_start_powers), list(cfg.rectified), seeds,
                                         cfg.random_starts, cfg.max_sweeps, device=device)
        rows = [dict(N=cfg.random_start_neurons, K=cfg.random_start_memories, n=n, rect=float(rect),
                     stored=float(result.stored[i]), negated=float(result.negated[i]),
                     converged=float(result.converged[i]), starts=cfg.random_starts * len(seeds))
                for i, (n, rect) in enumerate(result.configs)]
        final = {"stored_mean": sum(r["stored"] for r in rows) / len(rows)}
    for i, row in enumerate(rows):
        cell(row, final if i == len(rows) - 1 else None)


# ----------------------------------------------------------------------------------------
# (3) Clique memory capacity pack (PAPERS.md §4)
# ----------------------------------------------------------------------------------------


@dataclass
class CliquePackConfig:
    """One clique trial: store random messages in one network, measuring the erasure-retrieval
    error at every checkpoint M, for each iteration count, with one retrieval rule."""

    clusters: int = 8
    """c, clusters (paper 8)."""
    neurons_per_cluster: int = 256
    """ℓ, neurons per cluster (paper 256)."""
    erased: int = 4
    """c_e, clusters erased in every test message (paper 4)."""
    messages: list = field(default_factory=lambda: [1000, 2500, 5000, 10000, 15000, 20000, 25000, 30000,
                                                    35000, 40000])
    """Checkpoints M (messages stored so far)."""
    iterations: list = field(default_factory=lambda: [1, 4])
    """Retrieval iterations measured at every checkpoint."""
    rule: str = "sum_of_sum"
    """"sum_of_sum" or "sum_of_max"."""
    gamma: float = 1.0
    """Self-excitation γ of the score."""
    num_tests: int = 2000
    """Stored messages tested at each checkpoint (a random sample of those stored)."""
    seed: int = 0
    """Seeds the messages, the test sample and the erasures."""
    device: str = "cpu"
    """"cpu", "cuda", "auto"."""

    def validate(self) -> "CliquePackConfig":
        fail = functools.partial(refuse, self)

        for name in ("clusters", "neurons_per_cluster"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 2:
                fail(name, "an integer >= 2")
        if not isinstance(self.erased, int) or isinstance(self.erased, bool) or not 0 <= self.erased < self.clusters:
            fail("erased", f"an integer in [0, clusters - 1 = {self.clusters - 1}] (erasing every cluster "
                           "leaves nothing to retrieve from)")
        if not _int_list(self.messages) or min(self.messages) < 1:
            fail("messages", "a non-empty list of message counts M >= 1")
        if not _int_list(self.iterations) or min(self.iterations) < 1:
            fail("iterations", "a non-empty list of integers >= 1")
        if self.rule not in cm.RULES:
            fail("rule", f"one of {cm.RULES}")
        if not isinstance(self.gamma, (int, float)) or not math.isfinite(self.gamma) or self.gamma < 0:
            fail("gamma", "a finite number >= 0")
        if not isinstance(self.num_tests, int) or isinstance(self.num_tests, bool) or self.num_tests < 1:
            fail("num_tests", "an integer >= 1")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            fail("seed", "an integer")
        if self.device not in ("cpu", "auto") and not str(self.device).startswith("cuda"):
            fail("device", '"cpu", "auto" or "cuda[:N]"')
        return self


def validate_clique(config: dict) -> None:
    config_to_dataclass(CliquePackConfig, config, ignore=(FAULT_KEY,)).validate()


def clique_capacity_pack(config: dict) -> None:
    """Cells ``c, ell, c_e, M, iters`` (coordinates), ``errors, tests, error_rate``, ``density`` (counted),
    ``density_formula`` and ``error_formula`` (one-iteration P_e). The last cell adds
    ``max_gap_1iter`` = max |measured − formula| at one iteration over 5,000 ≤ M ≤ 30,000."""
    cfg = config_to_dataclass(CliquePackConfig, config, ignore=(FAULT_KEY,)).validate()
    device = _device(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed)
    memory = cm.CliqueMemory(cfg.clusters, cfg.neurons_per_cluster, device=device)
    stored = torch.empty(0, cfg.clusters, dtype=torch.long)
    cell = _CellReporter(config)
    checkpoints = sorted(set(cfg.messages))
    rows = []
    for m in checkpoints:
        new = cm.random_messages(m - stored.shape[0], cfg.clusters, cfg.neurons_per_cluster, gen)
        memory.store(new.to(device))
        stored = torch.cat([stored, new])
        sample = stored[torch.randperm(m, generator=gen)[:cfg.num_tests]]
        density = memory.density()
        d_formula = float(cm.density_formula(m, cfg.neurons_per_cluster))
        p_formula = float(cm.one_iteration_error_formula(m, cfg.clusters, cfg.neurons_per_cluster, cfg.erased))
        for iters in sorted(set(cfg.iterations)):
            # same erasures for every iteration count: re-seed from (seed, M)
            erase_gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + m)
            rate = cm.erasure_error_rate(memory, sample.to(device), cfg.erased, iters, cfg.rule, cfg.gamma, erase_gen)
            tests = sample.shape[0]
            rows.append(dict(c=cfg.clusters, ell=cfg.neurons_per_cluster, c_e=cfg.erased, M=m, iters=iters,
                             errors=round(rate * tests), tests=tests, error_rate=rate,
                             density=density, density_formula=d_formula, error_formula=p_formula))
    gaps = [abs(r["error_rate"] - r["error_formula"]) for r in rows if r["iters"] == 1 and 5000 <= r["M"] <= 30000]
    final = {"max_gap_1iter": max(gaps) if gaps else 0.0}
    for i, row in enumerate(rows):
        cell(row, final if i == len(rows) - 1 else None)


# ----------------------------------------------------------------------------------------
# (4) Adversarial transfer (Krotov's slides, PAPERS.md §3)
# ----------------------------------------------------------------------------------------

ATTACK_MODES = ("sign", "scaled")


@dataclass
class AdversarialConfig:
    """Two classifiers (``powers``) trained alike, each attacked, each attack set classified by both."""

    powers: list = field(default_factory=lambda: [2, 8])
    """The two powers (slides: n = 2 and n = 8)."""
    num_memories: int = 500
    """K of both models."""
    epochs: int = 200
    """Training epochs of both models (temperature/m: POWER_DEFAULTS of each n)."""
    ramp_epochs: int = 100
    """Temperature ramp (small n)."""
    batch_size: int = 100
    """Minibatch size."""
    lr: float = 0.02
    """ε₀ of the Krotov update."""
    momentum: float = 0.9
    """p of the Krotov update."""
    dataset: str = "mnist_offline"
    """Flat dataset (dham_core.data.FLAT_DATASETS)."""
    data_root: str | None = None
    """Dataset folder (None: default)."""
    download: bool = False
    """Full MNIST: torchvision download."""
    train_limit: int | None = None
    """First N training images only (smoke)."""
    attack_images: int = 500
    """Test images attacked (taken among those both models classify correctly)."""
    attack_mode: str = "scaled"
    """"scaled": v ← v − ε ∂C/∂v / max|∂C/∂v| (the slides' input-gradient step); "sign": FGSM-like."""
    attack_steps: int = 200
    """Maximum attack steps (each image stops once its model is fooled)."""
    attack_step_size: float = 0.02
    """ε per step (pixels live in [−1, 1])."""
    attack_m: int = 1
    """Exponent of the attack loss Σ (c − t)^(2m)."""
    seed: int = 0
    """Seeds both models, the shuffles and the image choice."""
    device: str = "auto"
    """"auto", "cpu", "cuda"."""

    def validate(self) -> "AdversarialConfig":
        fail = functools.partial(refuse, self)

        if (not isinstance(self.powers, (list, tuple)) or len(self.powers) != 2
                or not all(isinstance(p, (int, float)) and not isinstance(p, bool) and p >= 1 for p in self.powers)):
            fail("powers", "two powers >= 1, e.g. [2, 8]")
        if self.attack_mode not in ATTACK_MODES:
            fail("attack_mode", f"one of {ATTACK_MODES}")
        for name in ("attack_images", "attack_steps", "attack_m"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(name, "an integer >= 1")
        if not isinstance(self.attack_step_size, (int, float)) or not self.attack_step_size > 0:
            fail("attack_step_size", "a number > 0")
        for power in self.powers:
            self.model_config(power).validate()
        return self

    def model_config(self, power) -> DAMTrialConfig:
        return DAMTrialConfig(power=power, num_memories=self.num_memories, epochs=self.epochs,
                              ramp_epochs=self.ramp_epochs, batch_size=self.batch_size, lr=self.lr,
                              momentum=self.momentum, dataset=self.dataset, data_root=self.data_root,
                              download=self.download, train_limit=self.train_limit, seed=self.seed,
                              device=self.device)


def validate_adversarial(config: dict) -> None:
    config_to_dataclass(AdversarialConfig, config, ignore=(FAULT_KEY,)).validate()


def _tag(power) -> str:
    return f"n{int(power) if float(power) == int(power) else power}"


@torch.no_grad()
def _predict(model, x, batch=2000):
    return torch.cat([model(x[b:b + batch]).argmax(1) for b in range(0, x.shape[0], batch)])


def transfer_table(models: dict, images: torch.Tensor, labels: torch.Tensor, attack: dict) -> dict[str, float]:
    """Attack every model and classify each adversarial set by every model.

    Returns ``err_gen{a}_cls{b}`` (fraction of the images made against model a that model b
    misclassifies), ``fooled_{a}`` (the attacked model's own rate, = err_gen{a}_cls{a}),
    ``steps_{a}`` (mean steps) and ``linf_{a}`` (mean largest pixel change).
    """
    out = {}
    for gen_name, gen_model in models.items():
        result = dam.input_gradient_attack(gen_model, images, labels, **attack)
        out[f"steps_{gen_name}"] = float(result.steps.double().mean())
        out[f"linf_{gen_name}"] = float((result.images - images).abs().amax(1).mean())
        for cls_name, cls_model in models.items():
            wrong = _predict(cls_model, result.images) != labels
            out[f"err_gen{gen_name}_cls{cls_name}"] = float(wrong.double().mean())
        out[f"fooled_{gen_name}"] = float(result.fooled.double().mean())
    return out


def dam_adversarial_transfer(config: dict) -> None:
    """Per epoch: ``epoch``, ``eval_error_{n2,n8}`` and ``clean_error`` (the worse of the two),
    with both trainers in the checkpoint. Then one result with the 2×2 table
    (:func:`transfer_table`) on ``attack_images`` test images both classify correctly."""
    cfg = config_to_dataclass(AdversarialConfig, config, ignore=(FAULT_KEY,)).validate()
    data = classifier_data(cfg.model_config(cfg.powers[0]))
    names = [_tag(p) for p in cfg.powers]
    trainers = {name: dam.DAMTrainer(cfg.model_config(p).dam_config(), data) for name, p in zip(names, cfg.powers, strict=True)}
    state = load_state()
    if state is not None:
        for name, trainer in trainers.items():
            trainer.load_state_dict(state[name])
    restored = state is not None
    epoch = min(t.epoch for t in trainers.values())
    while epoch < cfg.epochs:
        metrics = {}
        for name, trainer in trainers.items():
            trainer.train_epoch()
            trainer.epoch += 1
            metrics[f"eval_error_{name}"] = trainer.error(trainer.test_x, trainer.test_y)
        epoch += 1
        out = {"epoch": epoch, **metrics, "clean_error": max(metrics.values())}
        inject_fault(config, epoch, restored, out)
        report(out, {name: t.state_dict() for name, t in trainers.items()})
    first = trainers[names[0]]
    x, y = first.test_x, first.test_y
    models = {name: t.model for name, t in trainers.items()}
    both = torch.ones_like(y, dtype=torch.bool)
    for model in models.values():
        both &= _predict(model, x) == y
    pick = both.nonzero().flatten()
    pick = pick[torch.randperm(pick.numel(), generator=torch.Generator().manual_seed(cfg.seed))[:cfg.attack_images]]
    attack = dict(steps=cfg.attack_steps, step_size=cfg.attack_step_size, mode=cfg.attack_mode, m=cfg.attack_m)
    clean = {f"eval_error_{name}": t.error(t.test_x, t.test_y) for name, t in trainers.items()}
    out = {**clean, "clean_error": max(clean.values()), "attacked_images": float(pick.numel())}
    if pick.numel():  # (an untrained pair may classify no test image correctly: nothing to attack)
        table = transfer_table(models, x[pick], y[pick], attack)
        out.update(table, transfer_mean=sum(table[f"err_gen{a}_cls{b}"] for a in names for b in names if a != b) / 2)
    report(out)
