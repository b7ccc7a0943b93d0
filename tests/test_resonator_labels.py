"""Label <-> factor codes of the resonator head (dham_core.resonator_labels), against the
thesis's formulas (§4.1) written out by hand and brute-force loops."""
import itertools

import pytest
import torch

from dham_core import sbc
from dham_core.resonator_labels import UNUSED, LabelCode


def thesis_factors_v3(y: int) -> tuple[int, int, int]:
    return y // 100, (y % 100) // 10, y % 10


def thesis_factors_v2(y: int) -> tuple[int, int]:
    return y // 32, y % 32


@pytest.mark.parametrize("V, M, oracle", [(3, 10, thesis_factors_v3), (2, 32, thesis_factors_v2)])
def test_imagenet_codes_match_the_thesis_and_are_bijections(V, M, oracle):
    code = LabelCode(1000, V, M)
    labels = torch.arange(1000)
    factors = code.to_factors(labels)
    assert factors.shape == (1000, V)
    assert [tuple(f) for f in factors.tolist()] == [oracle(y) for y in range(1000)]
    assert len({tuple(f) for f in factors.tolist()}) == 1000  # injective
    assert torch.equal(code.to_labels(factors), labels)  # inverse on the used labels


@pytest.mark.parametrize("V, M, used", [(3, 10, 1000), (2, 32, 1000), (2, 10, 100), (3, 5, 117)])
def test_every_slot_decodes_to_its_label_or_to_unused(V, M, used):
    code = LabelCode(used, V, M)
    slots = torch.tensor(list(itertools.product(range(M), repeat=V)))  # all M^V tuples
    labels = code.to_labels(slots)
    # brute force: the tuple as a base-M number, most significant first
    numbers = [sum(f * M ** (V - 1 - p) for p, f in enumerate(t)) for t in slots.tolist()]
    expect = [n if n < used else UNUSED for n in numbers]
    assert labels.tolist() == expect
    assert int((labels == UNUSED).sum()) == M**V - used  # e.g. the 24 null labels of V=2, M=32
    assert sorted(x for x in labels.tolist() if x != UNUSED) == list(range(used))


@pytest.mark.parametrize("classes, V, M", [(1000, 3, 10), (1000, 2, 32), (100, 2, 10),
                                           (10, 2, 4), (101, 2, 11), (1, 2, 2), (7, 1, 7),
                                           (1001, 3, 11)])
def test_for_classes_takes_the_smallest_size(classes, V, M):
    code = LabelCode.for_classes(classes, V)
    assert code == LabelCode(classes, V, M)
    assert M**V >= classes and (M == 2 or (M - 1) ** V < classes)


def test_class_targets_bind_the_factor_codewords():
    gen = torch.Generator().manual_seed(3)
    D, k = 1280, 40
    L = D // k
    code = LabelCode(1000, 3, 10)
    cbs = [sbc.random_codebook(10, k, L, generator=gen) for _ in range(3)]
    targets = code.class_targets(cbs, L)
    assert targets.shape == (1000, k) and targets.dtype == torch.int64
    for y in (0, 1, 99, 100, 537, 999):
        i, j, h = thesis_factors_v3(y)
        # dense oracle: binding = cyclic shift of each segment by the other's offset
        dense = sbc.to_dense(cbs[0][i], L).view(k, L)
        dense = torch.stack([torch.roll(dense[s], int(cbs[1][j][s])) for s in range(k)])
        dense = torch.stack([torch.roll(dense[s], int(cbs[2][h][s])) for s in range(k)])
        assert torch.equal(sbc.to_dense(targets[y], L), dense.flatten())
    # a stacked (V, M, k) tensor is accepted too
    assert torch.equal(code.class_targets(torch.stack(cbs), L), targets)


def test_bad_input_is_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"classes must be <= size\*\*factors .*= 1000"):
        LabelCode(1001, 3, 10)
    with pytest.raises(ValueError, match="size must be an integer >= 2"):
        LabelCode(1, 2, 1)
    with pytest.raises(ValueError, match="factors must be an integer >= 1"):
        LabelCode(10, 0, 10)
    with pytest.raises(ValueError, match="classes must be an integer >= 1"):
        LabelCode.for_classes(0, 2)
    code = LabelCode(1000, 2, 32)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, classes\) = \[0, 1000\)"):
        code.to_factors(torch.tensor([1000]))
    with pytest.raises(ValueError, match="labels must be an integer tensor"):
        code.to_factors(torch.tensor([1.0]))
    with pytest.raises(ValueError, match=r"factors must lie in \[0, M\) = \[0, 32\)"):
        code.to_labels(torch.tensor([[0, 32]]))
    with pytest.raises(ValueError, match=r"shape \(B, V\) = \(B, 2\)"):
        code.to_labels(torch.tensor([[0, 1, 2]]))
    cb = torch.zeros(32, 40, dtype=torch.long)
    with pytest.raises(ValueError, match="codebooks must hold V = 2"):
        code.class_targets([cb], 32)
    with pytest.raises(ValueError, match=r"shape \(M, k\) = \(32, k\)"):
        code.class_targets([cb, cb[:10]], 32)
    with pytest.raises(ValueError, match=r"offsets must lie in \[0, L\) = \[0, 32\)"):
        code.class_targets([cb, cb + 32], 32)
