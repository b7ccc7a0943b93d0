"""Dense associative memory (Krotov–Hopfield) speed, measured side by side in one run.

1. DAM classifier forward+backward: the vectorised B×K×C form vs a naive loop over classes.
2. DAM step vs the same-size one-hidden-layer MLP of ``nn.Linear`` layers (its dual form,
   activation F′): target DAM ≤ 1.5× the MLP, at 1 CPU thread and at all cores (1 and 2 are
   measured by default on CPU; ``--threads`` picks one count).
3. Capacity measurement throughput (memory recalls checked per second): many (power, rectified,
   seed) cells packed into one pass vs one cell per call.

    python benchmarks/hopfield.py            # paper sizes: B = 1000, N = 784, K = 2000, C = 10
    python benchmarks/hopfield.py --quick    # tiny version (smoke test)

The machine's CPU count, torch threads and load average before and after are printed
(``benchmarks/machine.py``): on a shared machine the thread scaling is only as good as the
cores left free.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from machine import machine_load  # benchmarks/ is sys.path[0] when run as a script

from dham_core.hopfield_capacity import perfect_recall_fraction
from dham_core.hopfield_model import DenseAssociativeMemory, energy_fn, hopfield_loss, targets_pm1


def timed(fn, device: torch.device, reps: int) -> float:
    """Median seconds of ``fn()`` over ``reps`` runs after one warm-up."""
    return paired([fn], device, reps)[0]


def paired(fns, device: torch.device, reps: int) -> list[float]:
    """Median seconds of each of ``fns`` over ``reps`` rounds after one warm-up each; a round
    runs every fn once, in turn, so a load change on a shared machine hits all of them alike
    (timing one fn's reps after the other's would put the change into their ratio)."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for fn in fns:
        fn()
    sync()
    times = [[] for _ in fns]
    for _ in range(reps):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn()
            sync()
            out.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def naive_forward(model: DenseAssociativeMemory, v: torch.Tensor) -> torch.Tensor:
    """The per-class formula with a Python loop over α (docs/krotov_hopfield.md, "Classifier and
    training recipe"), scaled by T like the model."""
    n_vis, t, n = model.num_visible, model.temperature, model.power
    xi = model.memories
    visible = v @ xi[:, :n_vis].T
    outputs = []
    for alpha in range(model.num_classes):
        rest = visible.clone()
        for gamma in range(model.num_classes):
            if gamma != alpha:
                rest = rest - xi[:, n_vis + gamma]
        on = energy_fn((rest + xi[:, n_vis + alpha]) / t, n, True)
        off = energy_fn((rest - xi[:, n_vis + alpha]) / t, n, True)
        outputs.append(torch.tanh((on - off).sum(1)))
    return torch.stack(outputs, 1)


def classifier_benchmark(batch: int, visible: int, memories: int, classes: int, power: int, device, reps: int):
    g = torch.Generator().manual_seed(0)
    model = DenseAssociativeMemory(visible, classes, memories, power, 400.0, generator=g).to(device)
    mlp = model.dual_network()
    v = (torch.rand(batch, visible, generator=g) * 2 - 1).to(device)
    t = targets_pm1(torch.randint(0, classes, (batch,), generator=g), classes).to(device)

    def step(net):
        def run():
            net.zero_grad(set_to_none=True)
            hopfield_loss(net(v), t, 3).backward()
        return run

    def naive_step():
        model.zero_grad(set_to_none=True)
        hopfield_loss(naive_forward(model, v), t, 3).backward()

    vec, dual = paired([step(model), step(mlp)], device, reps)
    naive = timed(naive_step, device, max(3, reps // 4))
    sizes = f"B={batch}, N={visible}, K={memories}, C={classes}, n={power}"
    print(f"DAM forward+backward ({sizes}): vectorised {vec * 1e3:.1f} ms, naive per-class loop "
          f"{naive * 1e3:.1f} ms -> naive/vectorised = {naive / vec:.2f}x")
    print(f"DAM step vs nn.Linear MLP of the same size (dual form, activation F'), "
          f"{torch.get_num_threads()} CPU threads: DAM {vec * 1e3:.1f} ms, "
          f"MLP {dual * 1e3:.1f} ms -> DAM/MLP = {vec / dual:.2f}x (target <= 1.5x)")


def capacity_benchmark(num_neurons: int, num_memories: int, powers, seeds, probes: int, device, reps: int):
    flags = [False, True]
    cells = len(powers) * len(flags) * len(seeds)

    def packed():
        perfect_recall_fraction(num_neurons, [num_memories], powers, flags, seeds, probes, device)

    def single():
        for n in powers:
            for r in flags:
                for sd in seeds:
                    perfect_recall_fraction(num_neurons, [num_memories], [n], r, [sd], probes, device)

    recalls = cells * probes
    t_packed = timed(packed, device, reps)
    t_single = timed(single, device, reps)
    print(f"capacity, memories recalled per second (N={num_neurons}, K={num_memories}, {cells} cells = "
          f"powers {list(powers)} x plain/rectified x {len(seeds)} seeds, {probes} memories each): "
          f"packed {recalls / t_packed:,.0f}/s, one cell per call {recalls / t_single:,.0f}/s "
          f"-> packed/single = {t_single / t_packed:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--device", default="cpu", help='"cpu", "cuda", ... (default: cpu)')
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: the classifier at 1 thread and at all "
                             "cores, the capacity benchmark at 1 with --quick, else all cores)")
    parser.add_argument("--power", type=int, default=3, help="n of the classifier benchmark (default 3)")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    counts = [args.threads] if args.threads else sorted({1, cores})
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, classifier at {counts} CPU threads")
    with machine_load():
        for threads in counts:
            torch.set_num_threads(threads)
            if args.quick:
                classifier_benchmark(64, 784, 100, 10, args.power, device, reps=10)
            else:
                classifier_benchmark(1000, 784, 2000, 10, args.power, device, reps=21)
        torch.set_num_threads(args.threads or (1 if args.quick else cores))
        if args.quick:
            capacity_benchmark(50, 200, [2, 3], [0, 1], 20, device, reps=3)
        else:
            capacity_benchmark(100, 2000, [2, 3, 4, 5], [0, 1, 2, 3], 100, device, reps=3)


if __name__ == "__main__":
    main()
