"""Sparse block codes in offset form (dham_core.sbc), against a naive dense reference and torchhd."""

import pytest
import torch
import torchhd  # test extra (torch-hd==5.8.4): the peer implementation

from dham_core import sbc

torch.set_num_threads(1)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def dense_bind(a, b, L):
    """Naive reference: binding of dense 0/1 vectors = segment-wise circular convolution."""
    A, Bv = sbc.to_dense(a, L).unflatten(-1, (-1, L)), sbc.to_dense(b, L).unflatten(-1, (-1, L))
    out = torch.zeros_like(A)
    for s in range(L):
        for t in range(L):
            out[..., (s + t) % L] += A[..., s] * Bv[..., t]
    return out.flatten(-2)


def test_block_length_and_codebook_shape():
    assert sbc.block_length(1280, 40) == 32
    cb = sbc.random_codebook(10, 8, 5, generator=gen(), batch_shape=(2, 3))
    assert cb.shape == (2, 3, 10, 8) and cb.dtype == torch.int64
    assert int(cb.min()) >= 0 and int(cb.max()) < 5
    # Every offset value is used (uniform draw), and the seed fixes the draw.
    assert set(cb.unique().tolist()) == set(range(5))
    assert torch.equal(cb, sbc.random_codebook(10, 8, 5, generator=gen(), batch_shape=(2, 3)))


@pytest.mark.parametrize("D,k", [(1000, 64), (10, 3), (0, 1), (16, 0)])
def test_block_length_rejects_bad_dims(D, k):
    with pytest.raises(ValueError, match="D|k"):
        sbc.block_length(D, k)


def test_k_not_dividing_D_message():
    with pytest.raises(ValueError, match=r"k must divide D \(got D=1000, k=64\)"):
        sbc.block_length(1000, 64)


def test_bind_matches_dense_circular_convolution():
    L = 7
    a = sbc.random_codebook(5, 4, L, generator=gen(1))
    b = sbc.random_codebook(5, 4, L, generator=gen(2))
    assert torch.equal(sbc.to_dense(sbc.bind(a, b, L), L), dense_bind(a, b, L))


def test_bind_commutative_associative_unbind_inverse():
    L = 16
    a, b, c = sbc.random_codebook(3, 200, L, generator=gen(3))
    assert torch.equal(sbc.bind(a, b, L), sbc.bind(b, a, L))
    assert torch.equal(sbc.bind(sbc.bind(a, b, L), c, L), sbc.bind(a, sbc.bind(b, c, L), L))
    e = sbc.bind(a, b, L)
    assert torch.equal(sbc.unbind(e, b, L), a)
    assert torch.equal(sbc.unbind(e, a, L), b)
    assert torch.equal(sbc.unbind(sbc.bind(sbc.bind(a, b, L), c, L), c, L), e)
    assert torch.equal(sbc.multibind(torch.stack([a, b, c]), L), sbc.bind(e, c, L))


def test_unbind_not_commutative():
    L = 16
    a, b = sbc.random_codebook(2, 200, L, generator=gen(4))
    assert not torch.equal(sbc.unbind(a, b, L), sbc.unbind(b, a, L))
    # ...they are inverses of each other: (a ⊘ b) ⊗ (b ⊘ a) is the identity (all zeros).
    assert torch.equal(sbc.bind(sbc.unbind(a, b, L), sbc.unbind(b, a, L), L), torch.zeros_like(a))


def test_bound_vector_is_dissimilar_to_factors():
    L, k = 32, 512
    a, b = sbc.random_codebook(2, k, L, generator=gen(5))
    e = sbc.bind(a, b, L)
    # Expected overlap of unrelated codes is k/L = 16; the factors themselves overlap fully.
    assert int(sbc.overlap(e, a)) < 40 and int(sbc.overlap(e, b)) < 40
    assert int(sbc.overlap(a, a)) == k


def test_bundle_identical_vectors_returns_the_vector():
    L = 8
    a = sbc.random_codebook(1, 50, L, generator=gen(6))[0]
    stack = a.expand(5, -1)
    assert torch.equal(sbc.bundle(stack, L, generator=gen(0)), a)


def test_bundle_majority_and_thinning_against_dense_reference():
    L, k = 6, 300
    vecs = sbc.random_codebook(5, k, L, generator=gen(7))
    acc = sbc.bundle_accumulator(vecs, L)
    # Integer sum of the dense vectors, laid out (k, L).
    ref = sbc.to_dense(vecs, L).sum(0).view(k, L)
    assert torch.equal(acc.to(ref.dtype), ref)
    out = sbc.bundle(vecs, L, generator=gen(1))
    # The kept offset is always a maximum of its segment.
    assert torch.equal(ref.gather(1, out[:, None])[:, 0], ref.max(1).values)


def test_thinning_ties_random_yet_reproducible():
    L, k = 4, 2000
    a, b = sbc.random_codebook(2, k, L, generator=gen(8))
    stack = torch.stack([a, b])
    out1 = sbc.bundle(stack, L, generator=gen(11))
    out2 = sbc.bundle(stack, L, generator=gen(11))
    assert torch.equal(out1, out2)  # same seed, same result
    # Where a and b differ the segment holds a 1-1 tie: the pick is one of the two, and
    # it is a fair coin (binomial(≈1500, 1/2): 5 sigma is about ±100).
    differ = a != b
    assert bool(((out1 == a) | (out1 == b)).all())
    n_a = int((out1 == a)[differ].sum())
    n = int(differ.sum())
    assert abs(n_a - n / 2) < 5 * (n / 4) ** 0.5
    # Different seeds pick differently in many tied segments.
    out3 = sbc.bundle(stack, L, generator=gen(12))
    assert int((out3 != out1).sum()) > n // 4


def test_thinning_tie_break_uniform_over_all_tied_positions():
    # One segment where positions 1, 4, 6 tie for the maximum: each should win ~1/3 of draws
    # across seeds, and a non-maximal position never wins.
    acc = torch.tensor([[0.0, 3.0, 1.0, 2.0, 3.0, 0.0, 3.0, 1.0]]).expand(3000, 8)
    picks = sbc.thin(acc.reshape(3000, 1, 8), generator=gen(3)).flatten()
    counts = torch.bincount(picks, minlength=8)
    assert counts[[0, 2, 3, 5, 7]].sum() == 0
    for p in (1, 4, 6):
        assert abs(int(counts[p]) - 1000) < 5 * (3000 * (1 / 3) * (2 / 3)) ** 0.5
    # Across seeds the first tied position is not always chosen.
    firsts = {int(sbc.thin(acc[:1, None], generator=gen(s))[0, 0]) for s in range(20)}
    assert firsts == {1, 4, 6}


def test_weighted_bundling():
    L, k = 10, 400
    vecs = sbc.random_codebook(3, k, L, generator=gen(9))
    # One dominant weight wins every segment.
    out = sbc.weighted_bundle(vecs, torch.tensor([5.0, 2.0, 2.0]), L, generator=gen(0))
    assert torch.equal(out, vecs[0])
    # Weights 2, 1.5, 1: vec0 loses only where vec1 and vec2 coincide (their 2.5 beats 2).
    w = torch.tensor([2.0, 1.5, 1.0])
    out = sbc.weighted_bundle(vecs, w, L, generator=gen(0))
    coincide = (vecs[1] == vecs[2]) & (vecs[0] != vecs[1])
    assert torch.equal(out[coincide], vecs[1][coincide])
    assert torch.equal(out[~coincide], vecs[0][~coincide])
    # Integer weights equal repeating vectors.
    reps = torch.cat([vecs[0:1].expand(3, k), vecs[1:2].expand(2, k)])
    acc_w = sbc.bundle_accumulator(vecs[:2], L, torch.tensor([3, 2]))
    assert torch.equal(acc_w, sbc.bundle_accumulator(reps, L).long())
    with pytest.raises(ValueError, match="weights"):
        sbc.weighted_bundle(vecs, torch.ones(2), L, generator=gen(0))


def test_batched_over_leading_dims():
    L, k = 8, 16
    vecs = sbc.random_codebook(4, k, L, generator=gen(10), batch_shape=(3, 2))  # (3, 2, 4, k)
    w = torch.rand(3, 2, 4, generator=gen(1))
    out = sbc.weighted_bundle(vecs, w, L, generator=gen(2))
    assert out.shape == (3, 2, k)
    for i in range(3):
        for j in range(2):
            acc = sbc.to_dense(vecs[i, j], L).mul(w[i, j, :, None]).sum(0).view(k, L)
            assert torch.equal(out[i, j], acc.argmax(1))  # float weights: no ties
    ov = sbc.overlap(vecs[:, :, 0], vecs)  # (3, 2, 4)
    assert ov.shape == (3, 2, 4) and bool((ov[..., 0] == k).all())


def test_overlap_equals_dense_inner_product_and_lookup():
    L, k, M = 16, 32, 50
    cb = sbc.random_codebook(M, k, L, generator=gen(12))
    x = sbc.random_codebook(7, k, L, generator=gen(13))
    ref = sbc.to_dense(x, L) @ sbc.to_dense(cb, L).T
    assert torch.equal(sbc.overlap(x, cb).float(), ref)
    table = sbc.overlap_table(cb, L)
    assert table.shape == (k * L, M)
    assert torch.equal(sbc.overlap_lookup(x, table, L), ref)
    # Stacked tables addressed by a per-problem row offset.
    cb2 = sbc.random_codebook(M, k, L, generator=gen(14))
    stacked = torch.cat([table, sbc.overlap_table(cb2, L)])
    grp = torch.tensor([0, 1, 1, 0, 1, 0, 0])
    got = sbc.overlap_lookup(x, stacked, L, grp * k * L)
    exp = torch.where(grp[:, None] == 1, sbc.overlap(x, cb2).float(), ref)
    assert torch.equal(got, exp)


def test_dense_round_trip_and_validation():
    L, k = 5, 12
    x = sbc.random_codebook(6, k, L, generator=gen(15))
    d = sbc.to_dense(x, L)
    assert d.shape == (6, k * L)
    assert bool((d.view(6, k, L).sum(-1) == 1).all())
    assert torch.equal(sbc.from_dense(d, k), x)
    bad = d.clone()
    bad[0, 0] = 1 - bad[0, 0]
    with pytest.raises(ValueError, match="maximally sparse"):
        sbc.from_dense(bad, k)
    with pytest.raises(ValueError, match="offsets must lie in"):
        sbc.to_dense(x + L, L)
    with pytest.raises(ValueError, match="k must divide D"):
        sbc.from_dense(d, 7)


def test_peer_torchhd_bsbc_bind_inverse_similarity():
    L, k = 64, 40
    a = torchhd.BSBCTensor.random(8, k, block_size=L, generator=gen(16))
    b = torchhd.BSBCTensor.random(8, k, block_size=L, generator=gen(17))
    ta, tb = a.as_subclass(torch.Tensor), b.as_subclass(torch.Tensor)
    assert torch.equal(a.bind(b).as_subclass(torch.Tensor), sbc.bind(ta, tb, L))
    # torchhd's inverse is the unbinding vector: e ⊘ b == e ⊗ inverse(b).
    e = a.bind(b)
    assert torch.equal(e.bind(b.inverse()).as_subclass(torch.Tensor), sbc.unbind(sbc.bind(ta, tb, L), tb, L))
    assert torch.equal(sbc.unbind(torch.zeros_like(tb), tb, L), b.inverse().as_subclass(torch.Tensor))
    assert torch.equal(
        a.multibind().as_subclass(torch.Tensor), sbc.multibind(ta, L)
    )
    sim = a.dot_similarity(b).as_subclass(torch.Tensor)
    assert torch.equal(sim, sbc.overlap(ta, tb).to(sim.dtype))


def test_cpu_fast_path_equals_general_rank_path():
    # thin() resolves unique maxima on CPU with a dot product and only ranks tied segments;
    # other devices rank every segment. Both must pick what the documented rule picks from
    # the same draws, written out here with explicit lists: one u per segment, and the
    # floor(u * c)-th of the c tied positions in position order.
    acc = torch.randint(0, 4, (50, 20, 9), generator=gen(20)).float()  # many ties
    got = sbc.thin(acc, generator=gen(21))
    u = torch.rand(50, 20, generator=gen(21)).tolist()
    expected, count = torch.empty(50, 20, dtype=torch.long), torch.empty(50, 20)
    for b, segments in enumerate(acc.tolist()):
        for j, seg in enumerate(segments):
            ties = [pos for pos, value in enumerate(seg) if value == max(seg)]
            expected[b, j] = ties[min(int(u[b][j] * len(ties)), len(ties) - 1)]
            count[b, j] = len(ties)
    assert torch.equal(got, expected)
    tie8 = (acc == acc.amax(-1, keepdim=True)).view(torch.uint8)
    rank = torch.minimum((torch.tensor(u) * count).floor(), count - 1).to(torch.int32)
    assert torch.equal(sbc._rank_position(tie8, rank).long(), expected)
    assert bool((count > 1).any()) and bool((count == 1).any())
