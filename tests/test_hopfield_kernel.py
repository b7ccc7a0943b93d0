"""The DAM classifier's hand-written kernel (``_PairedPowerSum``), block by block: its forward
and gradients equal plain autograd on the whole B×C×K tensor, whatever the block size (blocks
are sized per torch thread, so the thread count changes how the rows are cut)."""
import pytest
import torch

from dham_core import hopfield_model
from dham_core.hopfield_model import _PairedPowerSum, chunk_rows


def reference(u, a_t, r, n, rectified):
    """``S_bα = Σ_k F(r_b (u_bk + a_αk)) − F(r_b u_bk)`` with autograd, no blocks."""
    scale = 1.0 if r is None else r[:, :, None]
    x = (u[:, None, :] + a_t[None]) * scale
    base = u * (1.0 if r is None else r)
    if rectified:
        x, base = x.clamp(min=0), base.clamp(min=0)
    return x.pow(n).sum(2) - base.pow(n).sum(1, keepdim=True)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("rectified", [True, False])
@pytest.mark.parametrize("scaled", [False, True])
@pytest.mark.parametrize("per_thread", [1, 7 * 12, 1 << 18])  # 1 row, 7 rows (uneven), all
def test_blocked_kernel_equals_autograd_reference(monkeypatch, n, rectified, scaled, per_thread):
    monkeypatch.setattr(hopfield_model, "CPU_CHUNK_PER_THREAD", per_thread)
    g = torch.Generator().manual_seed(n)
    rows, classes, k = 17, 3, 4
    u = (torch.rand(rows, k, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    a_t = (torch.rand(classes, k, generator=g, dtype=torch.float64) - 0.5).requires_grad_(True)
    r = torch.rand(rows, 1, generator=g, dtype=torch.float64) + 0.5 if scaled else None
    weights = torch.randn(rows, classes, generator=g, dtype=torch.float64)
    threads = torch.get_num_threads()
    assert chunk_rows(rows, classes * k, u.device) == min(rows, max(1, per_thread * threads // 12))

    out = _PairedPowerSum.apply(u, a_t, r, n, rectified)
    grad_u, grad_a = torch.autograd.grad((out * weights).sum(), (u, a_t))
    ref = reference(u, a_t, r, n, rectified)
    ref_u, ref_a = torch.autograd.grad((ref * weights).sum(), (u, a_t))
    assert ref.abs().max() > 0.1  # not a trivially zero case
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(grad_u, ref_u, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(grad_a, ref_a, atol=1e-12, rtol=1e-12)


def test_blocks_grow_with_threads_up_to_the_cap(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert chunk_rows(10_000, 1000, cpu) == 4 * hopfield_model.CPU_CHUNK_PER_THREAD // 1000
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1000)
    assert chunk_rows(10_000, 1000, cpu) == hopfield_model.CPU_CHUNK_MAX // 1000
    assert chunk_rows(5, 1000, cpu) == 5  # never more rows than there are
