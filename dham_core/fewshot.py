"""Few-shot transfer with frozen DHAM features (DecisiveNets Table 4), no Ray import.

The protocol as read in docs/decisivenets.md, "Table 4": train a backbone on the *base*
classes of a class split (CIFAR-FS: 64 of CIFAR-100's classes, Bertinetto et al.), freeze it,
extract the features (``model.features``: the globally pooled last block, evaluated with the
hard WTA) of every image of the *novel* classes (CIFAR-FS: its 20 test classes, 600 images
each), then average over ``episodes`` random N-way K-shot episodes the accuracy of a
nearest-class-mean classifier (Wang et al., SimpleShot) on Q queries per class.

* :data:`SPLITS` — the class splits by name (``"cifar-fs"``; ``"digits"``, the offline analogue
  on mnist_offline: base digits 0–4, novel digits 5–9).
* :class:`FewShotConfig` — a :class:`~dham_core.train.DHAMConfig` (the backbone and its
  training) plus the split and the episode settings, validated before any work.
* :func:`fewshot_data` — the ``load_dataset``-style tuple the existing
  :class:`~dham_core.train.Trainer` trains on (``data=``; base classes relabelled 0..n-1) and
  the novel-class images kept for episodes.
* :func:`extract_features` — frozen, eval-mode (WTA) features, batched.
* :func:`ncm_episodes` — the episode evaluator on any ``(N, d)`` features and labels, seeded
  and vectorised over episodes.
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset, TensorDataset

from . import published
from .checks import is_int, positive_int, refuse
from .data import DATASETS, cifar_reader, cifar_transforms, load_dataset
from .train import DHAMConfig

FEATURE_NORMS = ("none", "l2")
_EPISODE_CHUNK = 1000  # episodes drawn and scored together (fixed: the draws never depend on it)


@dataclass(frozen=True)
class ClassSplit:
    """Base classes (the backbone trains on them) and novel classes (episodes), by name."""

    dataset: str
    """The ``data.DATASETS`` name the split is cut from."""
    classes: tuple[str, ...]
    """The dataset's class names in label order (label i is ``classes[i]``)."""
    base: tuple[str, ...]
    novel: tuple[str, ...]
    novel_images: int
    """Images of every novel class available to an episode (shots + queries at most)."""


SPLITS = {
    # CIFAR-FS's train and test classes; its 16 validation classes are not used (as in the paper).
    # A novel class's 600 images = its 500 CIFAR-100 training images + its 100 test images.
    "cifar-fs": ClassSplit("cifar100", published.CIFAR100_CLASSES, published.CIFAR_FS_TRAIN,
                           published.CIFAR_FS_TEST, 600),
    # Offline analogue: mnist_offline has 500 images per digit.
    "digits": ClassSplit("mnist_offline", tuple("0123456789"), tuple("01234"), tuple("56789"), 500),
}


def class_indices(names, classes, field: str = "split") -> list[int]:
    """Labels of the class ``names`` in a dataset whose label order is ``classes``; a name the
    dataset lacks is refused (``ValueError`` naming ``field``, the name and the classes)."""
    position = {name: i for i, name in enumerate(classes)}
    missing = [n for n in names if n not in position]
    if missing:
        raise ValueError(f"{field}: class name(s) {missing} not in the dataset's classes "
                         f"(allowed: {', '.join(classes)})")
    return [position[n] for n in names]


@dataclass
class FewShotConfig(DHAMConfig):
    """A backbone trained on a split's base classes, then N-way K-shot episodes on its novel
    classes (the DHAMConfig fields set the backbone and its training)."""

    dataset: str = "cifar100"
    """The dataset the split is cut from (must be the split's: cifar-fs → cifar100, digits →
    mnist_offline)."""
    split: str = "cifar-fs"
    """One of SPLITS: "cifar-fs" (Bertinetto et al.'s 64/16/20) or "digits" (0–4 / 5–9)."""
    ways: int = 5
    """Classes per episode (N), at most the split's novel classes."""
    shots: int = 5
    """Labelled images per class per episode (K); their mean is the class's prototype."""
    queries: int = 595
    """Query images per class per episode; shots + queries <= the images of a novel class."""
    episodes: int = 10_000
    """Episodes averaged (paper: 10,000), drawn with a generator seeded by ``seed``."""
    feature_norm: str = "none"
    """Features before the nearest-mean rule: "none" (raw, the paper's reading) or "l2"
    (each feature vector scaled to unit Euclidean norm)."""
    feature_batch_size: int = 512
    """Images per batch when extracting the frozen features."""

    def validate(self) -> "FewShotConfig":
        super().validate()
        fail = functools.partial(refuse, self)
        if self.split not in SPLITS:
            fail("split", f"one of {tuple(SPLITS)}")
        split = SPLITS[self.split]
        if self.dataset != split.dataset:
            fail("dataset", f"{split.dataset!r} for split={self.split!r}")
        class_indices(split.base + split.novel, split.classes)
        for name in ("ways", "shots", "queries", "episodes", "feature_batch_size"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                fail(name, "an integer >= 1")
        if not 2 <= self.ways <= len(split.novel):
            fail("ways", f"an integer in [2, {len(split.novel)}] (the novel classes of split={self.split!r})")
        if self.shots + self.queries > split.novel_images:
            fail("queries", f"at most {split.novel_images - self.shots} (shots + queries <= "
                            f"{split.novel_images} images per novel class of split={self.split!r})")
        if self.feature_norm not in FEATURE_NORMS:
            fail("feature_norm", f"one of {FEATURE_NORMS}")
        return self


@dataclass
class FewShotData:
    """What :func:`fewshot_data` returns."""

    train: tuple
    """``(train_ds, val_ds, test_ds, num_classes, in_channels)`` over the base classes only,
    labels 0..len(base)-1 in the split's order: the Trainer's ``data=``. val and test are the
    base classes' held-out images (their accuracy is the backbone's base-class accuracy)."""
    novel: Dataset
    """Every image of the novel classes (test transform), labels as in the full dataset."""


def _by_labels(ds: TensorDataset, labels: list[int], relabel: bool) -> TensorDataset:
    """The items of ``ds`` whose label is in ``labels`` (relabelled to their position there)."""
    images, targets = ds.tensors
    keep = torch.isin(targets, torch.tensor(labels))
    targets = targets[keep]
    if relabel:
        lookup = torch.full((max(labels) + 1,), -1, dtype=torch.int64)
        lookup[torch.tensor(labels)] = torch.arange(len(labels))
        targets = lookup[targets]
    return TensorDataset(images[keep], targets)


def fewshot_data(cfg: FewShotConfig) -> FewShotData:
    """The base-class training data and the novel-class images of ``cfg.split``.

    CIFAR-FS: the backbone trains on the base classes' CIFAR-100 training images (500 each,
    with the paper's augmentation); val/test = their CIFAR-100 test images (100 each); the
    novel set = each novel class's 500 training + 100 test images (the paper's 5 + 595).
    Class names are resolved against torchvision's ``CIFAR100.classes`` read from the files.
    digits: mnist_offline's 3,500/500/1,000 split restricted to the base digits; the novel set
    = all 500 images of each novel digit.
    """
    split = SPLITS[cfg.split]
    num_classes, in_channels = len(split.base), DATASETS[split.dataset][1]
    if split.dataset == "mnist_offline":
        sets = load_dataset(split.dataset, seed=cfg.seed)[:3]
        base, novel = class_indices(split.base, split.classes), class_indices(split.novel, split.classes)
        train = tuple(_by_labels(ds, base, relabel=True) for ds in sets)
        pooled = TensorDataset(*(torch.cat(t) for t in zip(*(ds.tensors for ds in sets))))
        return FewShotData((*train, num_classes, in_channels), _by_labels(pooled, novel, relabel=False))
    train_tf, test_tf = cifar_transforms(split.dataset)
    probe = cifar_reader(split.dataset, cfg.data_root, cfg.download, train=True)
    base = class_indices(split.base, probe.classes)
    novel = set(class_indices(split.novel, probe.classes))
    relabel = {label: i for i, label in enumerate(base)}.__getitem__

    def subset(train: bool, transform, labels, target_transform=None) -> Subset:
        ds = cifar_reader(split.dataset, cfg.data_root, False, train, transform, target_transform)
        return Subset(ds, [i for i, t in enumerate(ds.targets) if t in labels])

    base_set = set(base)
    train_ds = subset(True, train_tf, base_set, relabel)
    held_out = subset(False, test_tf, base_set, relabel)
    novel_ds = ConcatDataset([subset(True, test_tf, novel), subset(False, test_tf, novel)])
    return FewShotData((train_ds, held_out, held_out, num_classes, in_channels), novel_ds)


@torch.no_grad()
def extract_features(model: torch.nn.Module, dataset: Dataset, batch_size: int = 512,
                     device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features (N, d) float32, labels (N,) int64)`` of every item of ``dataset`` through
    ``model.features`` in eval mode (hard WTA), on ``device`` (default: the model's)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    if isinstance(dataset, TensorDataset):
        images, labels = dataset.tensors
        batches = zip(images.split(batch_size), labels.split(batch_size))
    else:
        batches = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    feats, labs = [], []
    for x, y in batches:
        feats.append(model.features(x.to(device)).float())
        labs.append(torch.as_tensor(y, dtype=torch.int64).to(device))
    return torch.cat(feats), torch.cat(labs)


@dataclass
class EpisodeResult:
    """What :func:`ncm_episodes` returns."""

    accuracy: float
    """Mean over episodes of the fraction of queries classified right."""
    ci95: float
    """Half-width of the 95% confidence interval of ``accuracy``: 1.96 · s / √E, s the
    sample standard deviation (ddof 1) of the per-episode accuracies."""
    per_episode: torch.Tensor
    """(E,) float64 accuracy of every episode."""
    support: torch.Tensor | None = None
    """(E, N, K) indices into the features: episode e's class-w support images (if asked)."""
    query: torch.Tensor | None = None
    """(E, N, Q) indices of episode e's class-w queries (if asked)."""


def check_episodes(labels: torch.Tensor, ways: int, shots: int, queries: int, episodes: int) -> None:
    """Refuse (``ValueError`` naming the field) settings ``labels`` cannot satisfy."""
    for name, value in (("ways", ways), ("shots", shots), ("queries", queries), ("episodes", episodes)):
        positive_int(name, value)
    _, counts = torch.unique(labels, return_counts=True)
    if not 2 <= ways <= len(counts):
        raise ValueError(f"ways must be an integer in [2, {len(counts)}] (the classes present; "
                         f"got ways={ways})")
    if shots + queries > int(counts.min()):
        raise ValueError(f"queries must be at most {int(counts.min()) - shots} (shots + queries <= "
                         f"{int(counts.min())}, the images of the smallest class; got shots={shots}, "
                         f"queries={queries})")


class _ClassTable:
    """The indices of ``labels`` grouped by class: row c of ``table`` holds class c's
    ``counts[c]`` indices (ascending), padded with -1; both live on ``labels``' device."""

    def __init__(self, labels: torch.Tensor) -> None:
        _, self.counts = torch.unique(labels, return_counts=True)
        rows = torch.repeat_interleave(torch.arange(len(self.counts), device=labels.device), self.counts)
        starts = torch.repeat_interleave(torch.cumsum(self.counts, 0) - self.counts, self.counts)
        within = torch.arange(len(labels), device=labels.device) - starts
        self.table = torch.full((len(self.counts), int(self.counts.max())), -1, dtype=torch.int64,
                                device=labels.device)
        self.table[rows, within] = torch.argsort(labels, stable=True)

    def draw(self, ways: int, episodes: int, generator: torch.Generator):
        """``(chosen (E, N) class rows, keys (E, N, n_max))``: per episode ``ways`` distinct
        classes uniformly at random, and a random key per image of each drawn class, all
        distinct (a random 40-bit number, then the position); padding gets the largest key.
        An image's rank among its class's keys is its place in a uniform random permutation:
        the ``shots`` smallest keys are the support, the next ``queries`` the queries."""
        device, width = self.table.device, self.table.shape[1]
        draws = torch.rand(episodes, len(self.counts), generator=generator, device=device)
        chosen = draws.argsort(1)[:, :ways]
        position = torch.arange(width, device=device)
        keys = torch.randint(0, 1 << 40, (episodes, ways, width), generator=generator, device=device)
        keys = keys * width + position
        keys[position >= self.counts[chosen].unsqueeze(-1)] = torch.iinfo(torch.int64).max
        return chosen, keys


def sample_episodes(labels: torch.Tensor, ways: int, shots: int, queries: int, episodes: int,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(support (E, N, K), query (E, N, Q))`` indices into ``labels``: per episode ``ways``
    distinct classes uniformly at random, per class ``shots + queries`` distinct images
    uniformly at random (the first ``shots`` are the support), drawn on ``generator``'s
    device. For up to 1,000 episodes these are :func:`ncm_episodes`'s draws from the same
    ``generator`` state (it draws in chunks of 1,000 episodes)."""
    classes = _ClassTable(labels.to(generator.device))
    chosen, keys = classes.draw(ways, episodes, generator)
    picked = classes.table[chosen.unsqueeze(-1), keys.argsort(-1)[..., : shots + queries]]
    return picked[..., :shots], picked[..., shots:]


def _correct(features: torch.Tensor, classes: _ClassTable, chosen: torch.Tensor, keys: torch.Tensor,
             shots: int, queries: int) -> torch.Tensor:
    """Queries classified right per episode (float64, (E,)) by the nearest support mean.

    Support = the ``shots`` smallest keys of a drawn class, queries = the next ``queries``
    (a rank threshold, no sort). argmin_w |q - m_w|^2 = argmin_w (|m_w|^2 - 2 q.m_w): the dot
    products go class by class, one matmul of a class's images against the prototypes of every
    episode that drew it; the queries' predictions are then counted through a mask."""
    table, device, (ways, d) = classes.table, features.device, (chosen.shape[1], features.shape[1])
    support = keys.topk(shots, -1, largest=False).indices  # (E, N, K) positions in the class
    means = features[table[chosen.unsqueeze(-1), support]].mean(2)  # (E, N, d) prototypes
    norms = (means * means).sum(-1)  # (E, N)
    low = keys.gather(-1, support).amax(-1, keepdim=True)  # the K-th smallest key
    high = keys.kthvalue(shots + queries, -1, keepdim=True).values
    is_query = (keys > low) & (keys <= high)  # (E, N, n_max)
    correct = torch.zeros(len(chosen), dtype=torch.float64, device=device)
    for c in range(len(table)):
        episode, way = (chosen == c).nonzero(as_tuple=True)
        if len(episode) == 0:
            continue
        n = int(classes.counts[c])
        dots = (features[table[c, :n]] @ means[episode].reshape(-1, d).T).view(n, len(episode), ways)
        predicted = (norms[episode] - 2 * dots).argmin(-1).T  # (E_c, n) every image's prediction
        right = (predicted == way.unsqueeze(1)) & is_query[episode, way, :n]
        correct.index_add_(0, episode, right.sum(1).double())
    return correct


def ncm_episodes(features: torch.Tensor, labels: torch.Tensor, ways: int = 5, shots: int = 5,
                 queries: int = 595, episodes: int = 10_000, seed: int = 0,
                 feature_norm: str = "none", return_indices: bool = False) -> EpisodeResult:
    """Nearest-class-mean accuracy over ``episodes`` N-way K-shot episodes (Table 4's protocol).

    Every episode draws ``ways`` classes of ``labels`` and, per class, ``shots`` support and
    ``queries`` query images (distinct; :func:`sample_episodes`); a query gets the class whose
    support mean is nearest in Euclidean distance over ``features`` (after ``feature_norm``:
    "none" or "l2"). Everything runs on the features' device, the draws too: they depend on
    ``seed`` and on the device type (CPU and CUDA generators differ), not on anything else;
    the scoring is batched over episodes (chunks of a fixed 1,000).
    Returns the mean, its 95% CI (normal approximation) and the per-episode accuracies (and
    the sampled indices with ``return_indices``). Bad settings raise ``ValueError`` first.
    """
    if features.ndim != 2 or labels.shape != (len(features),):
        raise ValueError(f"features must be (N, d) and labels (N,) (got features "
                         f"{tuple(features.shape)}, labels {tuple(labels.shape)})")
    if feature_norm not in FEATURE_NORMS:
        raise ValueError(f"feature_norm must be one of {FEATURE_NORMS} (got {feature_norm!r})")
    check_episodes(labels, ways, shots, queries, episodes)
    features = features.float()
    if feature_norm == "l2":
        features = torch.nn.functional.normalize(features, dim=1)
    generator = torch.Generator(features.device).manual_seed(seed)
    classes = _ClassTable(labels.to(features.device))
    accs, supports, queries_idx = [], [], []
    for lo in range(0, episodes, _EPISODE_CHUNK):
        chosen, keys = classes.draw(ways, min(_EPISODE_CHUNK, episodes - lo), generator)
        accs.append(_correct(features, classes, chosen, keys, shots, queries) / (ways * queries))
        if return_indices:
            picked = classes.table[chosen.unsqueeze(-1), keys.argsort(-1)[..., : shots + queries]]
            supports.append(picked[..., :shots].cpu())
            queries_idx.append(picked[..., shots:].cpu())
    per_episode = torch.cat(accs).cpu()
    spread = float(per_episode.std()) if episodes > 1 else math.nan
    return EpisodeResult(float(per_episode.mean()), 1.96 * spread / math.sqrt(episodes), per_episode,
                         torch.cat(supports) if return_indices else None,
                         torch.cat(queries_idx) if return_indices else None)


def evaluate_fewshot(model: torch.nn.Module, novel: Dataset, cfg: FewShotConfig) -> dict:
    """Table 4's numbers for a trained backbone: its frozen features of every ``novel`` image,
    then :func:`ncm_episodes` with ``cfg``'s settings (seeded by ``cfg.seed``).

    Returns ``fewshot_acc`` and ``fewshot_ci95`` (fractions) and the wall seconds of the
    feature extraction (``feature_seconds``) and of the episodes (``episode_seconds``)."""
    start = time.perf_counter()
    features, labels = extract_features(model, novel, cfg.feature_batch_size)
    if features.is_cuda:
        torch.cuda.synchronize(features.device)
    extracted = time.perf_counter()
    result = ncm_episodes(features, labels, cfg.ways, cfg.shots, cfg.queries, cfg.episodes,
                          cfg.seed, cfg.feature_norm)
    return {"fewshot_acc": result.accuracy, "fewshot_ci95": result.ci95,
            "feature_seconds": extracted - start, "episode_seconds": time.perf_counter() - extracted}
