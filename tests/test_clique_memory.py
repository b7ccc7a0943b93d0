"""Gripon–Berrou clique memory (Gripon & Berrou 2011; docs/gripon_berrou.md) and its
hetero-associative form (DecisiveNets eq. 1; docs/decisivenets.md, "The model")."""
from __future__ import annotations

import pytest
import torch

from dham_core import clique_memory as cm
from dham_core.formulas import clique_density, clique_one_iteration_error



def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_store_builds_the_cliques_binary_symmetric_with_no_links_inside_a_cluster():
    memory = cm.CliqueMemory(4, 5)
    memory.store(torch.tensor([[0, 1, 2, 3], [4, 4, 4, 4]]))
    memory.store(torch.tensor([0, 1, 2, 3]))  # storing again changes nothing (OR)
    w = memory.weights
    assert w.dtype == torch.bool and torch.equal(w, w.T)
    expected = torch.zeros(20, 20, dtype=torch.bool)
    for msg in ([0, 1, 2, 3], [4, 4, 4, 4]):
        ids = [k * 5 + v for k, v in enumerate(msg)]
        for a in ids:
            for b in ids:
                if a != b:
                    expected[a, b] = True
    assert torch.equal(w, expected)
    blocks = w.view(4, 5, 4, 5)
    assert not any(blocks[k, :, k].any() for k in range(4))
    assert memory.num_stored == 3


@pytest.mark.parametrize("rule", cm.RULES)
def test_stored_messages_without_erasure_are_retrieved_exactly(rule):
    memory = cm.CliqueMemory(8, 64)
    messages = cm.random_messages(3000, 8, 64, gen(0))
    memory.store(messages)
    none_erased = torch.zeros(3000, 8, dtype=torch.bool)
    for iterations in (1, 4):
        out = memory.retrieve(messages, none_erased, iterations, rule)
        assert torch.equal(out.indices, messages)
        assert torch.equal(out.activity, torch.nn.functional.one_hot(messages, 64).bool())


def test_counted_density_matches_the_formula():
    memory = cm.CliqueMemory(8, 64)
    for m in (500, 2000, 6000):
        memory.store(cm.random_messages(m - memory.num_stored, 8, 64, gen(m)))
        d = float(clique_density(m, 64))
        pairs = 8 * 7 // 2 * 64 * 64  # possible links, each counted once
        sd = (d * (1 - d) / pairs) ** 0.5
        assert abs(memory.density() - d) < 4 * sd + 1e-9, (m, memory.density(), d)
    assert float(clique_density(0, 64)) == 0.0
    assert abs(float(clique_density(10 ** 7, 64)) - 1.0) < 1e-9


def test_one_iteration_error_formula_agrees_with_retrieval_and_four_iterations_do_better():
    # The paper's setting (c = 8, ℓ = 256, 4 erased) at M = 10,000: formula P_e ≈ 0.34.
    c, size, erased = 8, 256, 4
    memory = cm.CliqueMemory(c, size)
    messages = cm.random_messages(10000, c, size, gen(1))
    memory.store(messages)
    formula = float(clique_one_iteration_error(10000, c, size, erased))
    assert 0.2 < formula < 0.5  # an informative load
    test = messages[:600]
    one = cm.erasure_error_rate(memory, test, erased, iterations=1, generator=gen(2))
    four = cm.erasure_error_rate(memory, test, erased, iterations=4, generator=gen(2))
    four_max = cm.erasure_error_rate(memory, test, erased, iterations=4, rule="sum_of_max", generator=gen(2))
    assert abs(one - formula) < 0.05
    assert four < one / 2 and four_max < one / 2


def test_one_iteration_failures_are_exactly_the_ties_with_the_right_neuron():
    # After one iteration the right neuron of an erased cluster always has the full score c − c_e; an
    # error is a tie with a wrong neuron linked to every known neuron.
    memory = cm.CliqueMemory(6, 32)
    messages = cm.random_messages(600, 6, 32, gen(3))
    memory.store(messages)
    mask = cm.random_erasures(600, 6, 3, gen(4))
    out = memory.retrieve(messages, mask, iterations=1)
    w = memory.weights.view(6, 32, 6, 32)
    for row in range(0, 600, 37):
        known = [(k, int(messages[row, k])) for k in range(6) if not mask[row, k]]
        for k in range(6):
            if mask[row, k]:
                linked = torch.stack([w[kk, vv, k] for kk, vv in known]).all(0)
                assert torch.equal(out.activity[row, k], linked)
                assert int(out.indices[row, k]) == (int(messages[row, k]) if int(linked.sum()) == 1 else -1)
            else:
                assert int(out.indices[row, k]) == int(messages[row, k])


def test_sum_of_max_counts_each_cluster_once_and_sum_of_sum_every_active_neuron():
    memory = cm.CliqueMemory(3, 3)
    memory.store(torch.tensor([[0, 0, 0], [1, 0, 1], [2, 1, 2]]))
    activity = torch.zeros(1, 3, 3, dtype=torch.bool)
    activity[0, 0, :2] = True  # cluster 0: neurons 0 and 1 active (a tie)
    activity[0, 2, 0] = True
    sos = memory.scores(activity, "sum_of_sum", gamma=0.0)
    som = memory.scores(activity, "sum_of_max", gamma=0.0)
    # neuron (1, 0) is linked to (0, 0), (0, 1) and (2, 0): 3 under sum-of-sum, 2 under sum-of-max
    assert sos[0, 1, 0] == 3 and som[0, 1, 0] == 2
    assert sos[0, 1, 1] == 0 and som[0, 1, 1] == 0
    assert torch.equal(memory.scores(activity, "sum_of_max", gamma=2.5) - som, 2.5 * activity.float())


def test_batched_retrieval_equals_one_message_at_a_time():
    memory = cm.CliqueMemory(8, 32)
    messages = cm.random_messages(900, 8, 32, gen(5))
    memory.store(messages)
    mask = cm.random_erasures(40, 8, 4, gen(6))
    batch = memory.retrieve(messages[:40], mask, 4, "sum_of_max")
    for i in range(0, 40, 7):
        single = memory.retrieve(messages[i], mask[i], 4, "sum_of_max")
        assert torch.equal(single.activity[0], batch.activity[i])
        assert torch.equal(single.indices[0], batch.indices[i])


def test_hetero_associative_weights_are_the_max_of_outer_products_and_read_out_per_block():
    inputs = cm.random_messages(20, 4, 32, gen(7))
    outputs = cm.random_messages(20, 3, 10, gen(8))
    memory = cm.HeteroCliqueMemory(4, 32, 3, 10)
    memory.store(inputs, outputs)
    x = torch.nn.functional.one_hot(inputs, 32).flatten(1).float()  # (M, 128)
    y = torch.nn.functional.one_hot(outputs, 10).flatten(1).float()  # (M, 30)
    expected = torch.einsum("mi,mj->mij", y, x).amax(0).bool()
    assert torch.equal(memory.weights, expected)
    out = memory.retrieve(inputs)
    assert torch.equal(out.indices, outputs)  # low load: every stored pair reads back
    # per-block WTA with ties kept: a sole stored pair, half of its input erased, still reads out
    small = cm.HeteroCliqueMemory(2, 4, 2, 4)
    small.store(torch.tensor([[0, 1], [2, 1]]), torch.tensor([[3, 0], [1, 0]]))
    tie = small.retrieve(torch.tensor([[0, 1]]), torch.tensor([[True, False]]))
    assert tie.indices.tolist() == [[-1, 0]]
    assert tie.activity[0, 0].tolist() == [False, True, False, True]


def _small():
    return cm.CliqueMemory(3, 4)


KNOWN = torch.tensor([[0, 1, 1]])
ERASE_FIRST = torch.tensor([[True, False, False]])

BAD = [
    ("clusters", lambda: cm.CliqueMemory(1, 8)),
    ("neurons_per_cluster", lambda: cm.CliqueMemory(4, 1)),
    ("neurons_per_cluster", lambda: cm.CliqueMemory(4, 2.5)),
    ("messages", lambda: _small().store(torch.tensor([[0, 4, 1]]))),
    ("messages", lambda: _small().store(torch.tensor([[0, -1, 1]]))),
    ("messages", lambda: _small().store(torch.tensor([[0, 1]]))),
    ("messages", lambda: _small().store(torch.tensor([[0.0, 1.0, 2.0]]))),
    ("partial", lambda: _small().retrieve(torch.tensor([[9, 1, 1]]), torch.tensor([[False, True, False]]))),
    ("erased_mask", lambda: _small().retrieve(KNOWN, torch.tensor([[True, True, True]]))),
    ("erased_mask", lambda: _small().retrieve(KNOWN, torch.tensor([[True, False]]))),
    ("iterations", lambda: _small().retrieve(KNOWN, ERASE_FIRST, 0)),
    ("rule", lambda: _small().retrieve(KNOWN, ERASE_FIRST, rule="max_of_sum")),
    ("erased", lambda: cm.random_erasures(5, 4, 4)),
    ("in_clusters", lambda: cm.HeteroCliqueMemory(1, 4, 2, 4)),
    ("out_size", lambda: cm.HeteroCliqueMemory(2, 4, 2, 1)),
    ("outputs", lambda: cm.HeteroCliqueMemory(2, 4, 2, 4).store(torch.tensor([[0, 1]]), torch.tensor([[0, 4]]))),
    ("inputs", lambda: cm.HeteroCliqueMemory(2, 4, 2, 4).retrieve(torch.tensor([[0, 7]]))),
]


@pytest.mark.parametrize("name,call", BAD, ids=[f"{i}-{n}" for i, (n, _) in enumerate(BAD)])
def test_bad_arguments_are_refused_naming_the_argument(name, call):
    with pytest.raises(ValueError, match=name):
        call()
