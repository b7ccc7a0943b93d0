"""One clique-network capacity trial: store random messages in one network, measuring the
erasure-retrieval error at every checkpoint M for each iteration count (Gripon & Berrou 2011;
docs/gripon_berrou.md, "Retrieval" and "Density and error")."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch

from dham_core.checks import is_int, is_int_list, is_number, refuse
from dham_core.clique_memory import RULES, CliqueMemory, erasure_error_rate, random_messages
from dham_core.devices import resolve_device
from dham_core.formulas import clique_density, clique_one_iteration_error


@dataclass
class CliqueCapacityConfig:
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

    def validate(self) -> "CliqueCapacityConfig":
        fail = functools.partial(refuse, self)
        for name in ("clusters", "neurons_per_cluster"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 2:
                fail(name, "an integer >= 2")
        if not is_int(self.erased) or not 0 <= self.erased < self.clusters:
            fail("erased", f"an integer in [0, clusters - 1 = {self.clusters - 1}] (erasing every cluster "
                           "leaves nothing to retrieve from)")
        if not is_int_list(self.messages, 1):
            fail("messages", "a non-empty list of message counts M >= 1")
        if not is_int_list(self.iterations, 1):
            fail("iterations", "a non-empty list of integers >= 1")
        if self.rule not in RULES:
            fail("rule", f"one of {RULES}")
        if not is_number(self.gamma) or self.gamma < 0:
            fail("gamma", "a finite number >= 0")
        if not is_int(self.num_tests) or self.num_tests < 1:
            fail("num_tests", "an integer >= 1")
        if not is_int(self.seed):
            fail("seed", "an integer")
        if self.device not in ("cpu", "auto") and not str(self.device).startswith("cuda"):
            fail("device", '"cpu", "auto" or "cuda[:N]"')
        return self


def clique_capacity_rows(cfg: CliqueCapacityConfig) -> tuple[list[dict], dict]:
    """The cells of one trial and its aggregate (for the last cell).

    Cells: ``c, ell, c_e, M, iters`` (coordinates), ``errors, tests, error_rate``, ``density``
    (counted), ``density_formula`` and ``error_formula`` (one-iteration P_e). Aggregate:
    ``max_gap_1iter`` = max |measured − formula| at one iteration over 5,000 ≤ M ≤ 30,000.
    The same erasures serve every iteration count (re-seeded from (seed, M)).
    """
    cfg.validate()
    device = resolve_device(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed)
    memory = CliqueMemory(cfg.clusters, cfg.neurons_per_cluster, device=device)
    stored = torch.empty(0, cfg.clusters, dtype=torch.long)
    rows = []
    for m in sorted(set(cfg.messages)):
        new = random_messages(m - stored.shape[0], cfg.clusters, cfg.neurons_per_cluster, gen)
        memory.store(new.to(device))
        stored = torch.cat([stored, new])
        sample = stored[torch.randperm(m, generator=gen)[:cfg.num_tests]]
        density = memory.density()
        d_formula = clique_density(m, cfg.neurons_per_cluster)
        p_formula = clique_one_iteration_error(m, cfg.clusters, cfg.neurons_per_cluster, cfg.erased)
        for iters in sorted(set(cfg.iterations)):
            erase_gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + m)
            rate = erasure_error_rate(memory, sample.to(device), cfg.erased, iters, cfg.rule, cfg.gamma, erase_gen)
            tests = sample.shape[0]
            rows.append(dict(c=cfg.clusters, ell=cfg.neurons_per_cluster, c_e=cfg.erased, M=m, iters=iters,
                             errors=round(rate * tests), tests=tests, error_rate=rate,
                             density=density, density_formula=d_formula, error_formula=p_formula))
    gaps = [abs(r["error_rate"] - r["error_formula"]) for r in rows if r["iters"] == 1 and 5000 <= r["M"] <= 30000]
    return rows, {"max_gap_1iter": max(gaps) if gaps else 0.0}
