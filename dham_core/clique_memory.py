"""Gripon–Berrou sparse associative memory (clique networks; Gripon & Berrou 2011, IEEE TNN;
docs/gripon_berrou.md, "Model" and "Retrieval").

``c`` clusters of ``ℓ`` neurons; a message is one neuron per cluster, stored as a clique in a
binary symmetric weight matrix ``W`` with no links inside a cluster. Retrieval of a message with
erased clusters iterates "score, then winner-takes-all in every cluster (ties kept)".

* ``CliqueMemory`` — auto-associative store / retrieve, batched, CPU or GPU;
* ``HeteroCliqueMemory`` — the DecisiveNets chapter's hetero-associative form
  ``W = max_i(y_i x_iᵀ)`` with per-block WTA read-out (DecisiveNets eq. 1; docs/decisivenets.md,
  "The model");
* ``erasure_error_rate`` — the classic measurement (erase c_e clusters of stored messages).

The paper's density d and one-iteration error P_e are ``dham_core.formulas.clique_density``
and ``clique_one_iteration_error``; the capacity trial is ``dham_core.clique_capacity``.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from dham_core.checks import is_int

RULES = ("sum_of_sum", "sum_of_max")


class CliqueRetrieval(NamedTuple):
    activity: torch.Tensor
    """(B, c, ℓ) bool: active neurons after the last iteration (every tied winner kept)."""
    indices: torch.Tensor
    """(B, c) int64: the decoded neuron per cluster, −1 where a cluster has no single winner."""


def _check_size(name: str, value) -> int:
    if not is_int(value) or value < 2:
        raise ValueError(f"{name} must be an integer >= 2 (got {name}={value!r})")
    return value


def _check_messages(name: str, messages, clusters: int, size: int, device, mask=None) -> torch.Tensor:
    messages = torch.as_tensor(messages, device=device)
    if messages.dim() == 1:
        messages = messages[None]
    if messages.dim() != 2 or messages.shape[1] != clusters:
        raise ValueError(f"{name} must have shape (M, {clusters}) (got {tuple(messages.shape)})")
    if messages.dtype.is_floating_point or messages.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer neuron indices (got dtype {messages.dtype})")
    messages = messages.long()
    checked = messages if mask is None else messages[~mask]
    if checked.numel() and (int(checked.min()) < 0 or int(checked.max()) >= size):
        raise ValueError(f"{name} values must be in [0, {size - 1}] (got min {int(checked.min())}, "
                         f"max {int(checked.max())})")
    return messages


def _winners(score: torch.Tensor) -> torch.Tensor:
    """Per cluster (last dim): every neuron with the maximal score, if that score is > 0."""
    top = score.amax(-1, keepdim=True)
    return (score == top) & (top > 0)


def _decode(activity: torch.Tensor) -> torch.Tensor:
    single = activity.sum(-1) == 1
    return torch.where(single, activity.float().argmax(-1), -1)


class CliqueMemory:
    """Auto-associative clique network (docs/gripon_berrou.md, "Retrieval").

    ``store(messages)`` adds messages (M, c) of neuron indices in [0, ℓ): ``W ← W OR clique``.
    ``retrieve(partial, erased_mask, iterations, rule, gamma)`` recovers the erased clusters.
    """

    def __init__(self, clusters: int, neurons_per_cluster: int, device=None) -> None:
        self.clusters = _check_size("clusters", clusters)
        self.neurons_per_cluster = _check_size("neurons_per_cluster", neurons_per_cluster)
        n = clusters * neurons_per_cluster
        self.weights = torch.zeros(n, n, dtype=torch.bool, device=device)
        self.num_stored = 0
        self._float = None  # cached float copy of W for the matrix products

    @property
    def device(self) -> torch.device:
        return self.weights.device

    def store(self, messages) -> None:
        """Store messages (M, c) or (c,), batched (index writes, chunked)."""
        c, size = self.clusters, self.neurons_per_cluster
        messages = _check_messages("messages", messages, c, size, self.device)
        flat = messages + torch.arange(c, device=self.device) * size  # (M, c) neuron ids
        first, second = torch.triu_indices(c, c, 1, device=self.device)  # cluster pairs
        for m0 in range(0, flat.shape[0], 1 << 16):
            f = flat[m0:m0 + (1 << 16)]
            rows, cols = f[:, first].flatten(), f[:, second].flatten()
            self.weights[rows, cols] = True
            self.weights[cols, rows] = True
        self.num_stored += messages.shape[0]
        self._float = None

    def density(self) -> float:
        """Fraction of the possible inter-cluster connections that are present."""
        c, size = self.clusters, self.neurons_per_cluster
        return float(self.weights.sum()) / (c * (c - 1) * size * size)

    def _w(self) -> torch.Tensor:
        if self._float is None:
            self._float = self.weights.float()
        return self._float

    def scores(self, activity: torch.Tensor, rule: str = "sum_of_sum", gamma: float = 1.0) -> torch.Tensor:
        """One scoring step: (B, c, ℓ) activity → (B, c, ℓ) scores.

        ``sum_of_sum``: ``W·state + γ·state`` (every active neuron counts);
        ``sum_of_max``: every other cluster adds at most 1 (it holds some active neuron linked
        to the scored neuron), plus ``γ·state``.
        """
        b = activity.shape[0]
        c, size = self.clusters, self.neurons_per_cluster
        state = activity.float()
        w = self._w()
        if rule == "sum_of_sum":
            score = (state.view(b, c * size) @ w).view(b, c, size)
        elif rule == "sum_of_max":
            # per source cluster k: (B, ℓ) @ (ℓ, cℓ) → does k hold a linked active neuron?
            per_cluster = torch.bmm(state.transpose(0, 1), w.view(c, size, c * size))  # (c, B, cℓ)
            score = (per_cluster > 0).sum(0, dtype=torch.float32).view(b, c, size)
        else:
            raise ValueError(f"rule must be one of {RULES} (got rule={rule!r})")
        return score + gamma * state

    def retrieve(self, partial, erased_mask, iterations: int = 4, rule: str = "sum_of_sum",
                 gamma: float = 1.0) -> CliqueRetrieval:
        """Recover messages from ``partial`` (B, c) with ``erased_mask`` (B, c) bool clusters unknown.

        Erased clusters start with no active neuron (their values in ``partial`` are ignored);
        each iteration scores every neuron (``rule``) and keeps, per cluster, every neuron with
        the maximal score if that score is > 0 (ties kept). Stops early at a fixed point.
        """
        c, size = self.clusters, self.neurons_per_cluster
        erased = torch.as_tensor(erased_mask, dtype=torch.bool, device=self.device)
        if erased.dim() == 1:
            erased = erased[None]
        partial = torch.as_tensor(partial, device=self.device)
        if partial.dim() == 1:
            partial = partial[None]
        if erased.shape != partial.shape:
            raise ValueError(f"erased_mask must have the shape of partial {tuple(partial.shape)} "
                             f"(got {tuple(erased.shape)})")
        partial = _check_messages("partial", partial, c, size, self.device, mask=erased)
        if bool(erased.all(1).any()):
            raise ValueError("erased_mask must leave at least one known cluster per message "
                             "(got a row erasing every cluster)")
        if not is_int(iterations) or iterations < 1:
            raise ValueError(f"iterations must be an integer >= 1 (got iterations={iterations!r})")
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES} (got rule={rule!r})")
        activity = torch.nn.functional.one_hot(partial.clamp(min=0), size).bool() & ~erased[..., None]
        for _ in range(iterations):
            new = _winners(self.scores(activity, rule, gamma))
            if torch.equal(new, activity):
                break
            activity = new
        return CliqueRetrieval(activity, _decode(activity))


def random_messages(num_messages: int, clusters: int, neurons_per_cluster: int,
                    generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """Uniformly random messages (M, c) — one neuron index per cluster."""
    return torch.randint(0, neurons_per_cluster, (num_messages, clusters), generator=generator).to(device)


def random_erasures(num_messages: int, clusters: int, erased: int, generator: torch.Generator | None = None,
                    device=None) -> torch.Tensor:
    """(M, c) bool masks with exactly ``erased`` clusters erased per row, uniformly at random."""
    if not is_int(erased) or not 0 <= erased < clusters:
        raise ValueError(f"erased must be an integer in [0, {clusters - 1}] (got erased={erased!r})")
    order = torch.rand(num_messages, clusters, generator=generator).argsort(1)
    return (order < erased).to(device)


def erasure_error_rate(memory: CliqueMemory, messages: torch.Tensor, erased: int, iterations: int = 4,
                       rule: str = "sum_of_sum", gamma: float = 1.0, generator: torch.Generator | None = None,
                       batch_size: int = 1024) -> float:
    """Fraction of ``messages`` (stored ones, usually) not recovered exactly with ``erased``
    random clusters erased (an ambiguous cluster, −1, counts as an error)."""
    messages = torch.as_tensor(messages, device=memory.device).long()
    masks = random_erasures(messages.shape[0], memory.clusters, erased, generator, memory.device)
    wrong = 0
    for b0 in range(0, messages.shape[0], batch_size):
        msg, mask = messages[b0:b0 + batch_size], masks[b0:b0 + batch_size]
        out = memory.retrieve(msg, mask, iterations, rule, gamma)
        wrong += int((out.indices != msg).any(1).sum())
    return wrong / messages.shape[0]


class HeteroCliqueMemory:
    """Hetero-associative form ``x ↦ y``: ``W = max_i(y_i x_iᵀ)`` (DecisiveNets eq. 1;
    docs/decisivenets.md, "The model").

    Inputs are c one-hot blocks of ℓ, outputs c′ blocks of ℓ′ (given as index tensors);
    read-out ``z = W x`` then winner-takes-all in every output block (ties kept, score > 0).
    """

    def __init__(self, in_clusters: int, in_size: int, out_clusters: int, out_size: int, device=None) -> None:
        self.in_clusters = _check_size("in_clusters", in_clusters)
        self.in_size = _check_size("in_size", in_size)
        self.out_clusters = _check_size("out_clusters", out_clusters)
        self.out_size = _check_size("out_size", out_size)
        self.weights = torch.zeros(out_clusters * out_size, in_clusters * in_size, dtype=torch.bool, device=device)
        self.num_stored = 0

    @property
    def device(self) -> torch.device:
        return self.weights.device

    def _flat(self, name: str, idx, clusters: int, size: int, mask=None) -> torch.Tensor:
        idx = _check_messages(name, idx, clusters, size, self.device, mask)
        return idx + torch.arange(clusters, device=self.device) * size

    def store(self, inputs, outputs) -> None:
        """Store pairs: inputs (M, c) in [0, ℓ), outputs (M, c′) in [0, ℓ′)."""
        x = self._flat("inputs", inputs, self.in_clusters, self.in_size)
        y = self._flat("outputs", outputs, self.out_clusters, self.out_size)
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"inputs and outputs must have the same number of rows (got {x.shape[0]} "
                             f"and {y.shape[0]})")
        for m0 in range(0, x.shape[0], 1 << 16):
            xs, ys = x[m0:m0 + (1 << 16)], y[m0:m0 + (1 << 16)]
            rows = ys[:, :, None].expand(-1, -1, xs.shape[1]).flatten()
            cols = xs[:, None, :].expand(-1, ys.shape[1], -1).flatten()
            self.weights[rows, cols] = True
        self.num_stored += x.shape[0]

    def retrieve(self, inputs, erased_mask=None) -> CliqueRetrieval:
        """Read out (B, c′) indices for inputs (B, c); ``erased_mask`` (B, c) drops input blocks."""
        inputs = torch.as_tensor(inputs, device=self.device)
        if inputs.dim() == 1:
            inputs = inputs[None]
        mask = None
        if erased_mask is not None:
            mask = torch.as_tensor(erased_mask, dtype=torch.bool, device=self.device).reshape(inputs.shape)
        idx = _check_messages("inputs", inputs, self.in_clusters, self.in_size, self.device, mask)
        state = torch.nn.functional.one_hot(idx.clamp(0, self.in_size - 1), self.in_size).float()
        if mask is not None:
            state = state * (~mask)[..., None]
        state = state.view(idx.shape[0], -1)
        score = (state @ self.weights.float().T).view(-1, self.out_clusters, self.out_size)
        activity = _winners(score)
        return CliqueRetrieval(activity, _decode(activity))
