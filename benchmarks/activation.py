"""DHAM activation vs ReLU: alone (forward + backward) and inside a ResNet-18 training step.

Measured side by side in one run, variants interleaved round-robin so that load from other
processes hits all of them alike; ratios use the fastest repetition of each (the least
disturbed), medians are printed beside. Target (issue 2): ResNet-18 step ratio ≤ 1.15.
Figures from our runs: docs/decisivenets.md, "Measured here".

    python benchmarks/activation.py            # GPU if available (bf16 autocast, channels_last)
    python benchmarks/activation.py --quick    # tiny sizes, a few seconds (smoke test)

The run ends with the sweep's per-trial overhead: 100 no-op trials through the runner vs the
same evaluations in a plain loop (target <= 0.1 s per trial; ``benchmarks/trial_overhead.py``,
skipped with ``--no-overhead``).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from dham_core.activation import DHAMActivation
from dham_core.devices import resolve_device
from dham_core.models import build_model
from machine import machine_load  # benchmarks/ is sys.path[0] when run as a script

ELLS = (2, 4)
TARGET_STEP_RATIO = 1.15


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def interleaved(fns: dict, device: torch.device, warmup: int, repeats: int) -> dict:
    """{name: (min seconds, median seconds)} over ``repeats`` round-robin repetitions."""
    for _ in range(warmup):
        for fn in fns.values():
            timed(fn, device)
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            samples[name].append(timed(fn, device))
    return {name: (min(s), statistics.median(s)) for name, s in samples.items()}


def activation_alone(shape, device, dtype, warmup, repeats) -> dict:
    generator = torch.Generator(device="cpu").manual_seed(0)
    z = torch.randn(shape, generator=generator).to(device=device, dtype=dtype)
    if device.type == "cuda":
        z = z.contiguous(memory_format=torch.channels_last)
    z.requires_grad_()
    grad = torch.ones_like(z)

    def run(module):
        def step():
            z.grad = None
            module(z).backward(grad)
        return step

    fns = {"relu": run(torch.nn.ReLU())}
    for ell in ELLS:
        fns[f"dham ell={ell}"] = run(DHAMActivation(ell, temperature=10.0).train())
    return interleaved(fns, device, warmup, repeats)


def resnet18_steps(batch, width, device, amp, channels_last, warmup, repeats) -> dict:
    generator = torch.Generator(device="cpu").manual_seed(0)
    images = torch.randn(batch, 3, 32, 32, generator=generator).to(device)
    labels = torch.randint(0, 10, (batch,), generator=generator).to(device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)

    def make(ell):
        torch.manual_seed(0)
        model = build_model("resnet18", 10, width=width, ell=ell).to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def step():
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return step

    fns = {"relu": make(1)}
    for ell in ELLS:
        fns[f"dham ell={ell}"] = make(ell)
    return interleaved(fns, device, warmup, repeats)


def report(title: str, results: dict, target: float | None = None) -> None:
    base_min, base_med = results["relu"]
    print(title)
    for name, (best, median) in results.items():
        ratio, ratio_med = best / base_min, median / base_med
        verdict = ""
        if target is not None and name != "relu":
            verdict = f"  target <= {target:.2f}: {'PASS' if ratio <= target else 'FAIL'}"
        print(f"  {name:12s} min {best * 1e3:9.3f} ms  median {median * 1e3:9.3f} ms  "
              f"ratio {ratio:5.2f} (median {ratio_med:5.2f}){verdict}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--device", default="auto", help='"auto", "cpu" or "cuda"')
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (default 1: on a shared CPU, thread barriers swamp small ops)")
    parser.add_argument("--no-overhead", action="store_true",
                        help="skip the per-trial overhead measurement")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"
    if args.quick:
        shape, batch, width, warmup, repeats = (8, 16, 16, 16), 8, 16, 1, 5
    elif cuda:
        shape, batch, width, warmup, repeats = (128, 64, 32, 32), 128, 64, 5, 30
    else:
        shape, batch, width, warmup, repeats = (32, 64, 32, 32), 16, 64, 2, 10
    amp = channels_last = cuda
    dtype = torch.bfloat16 if amp else torch.float32
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; {'quick' if args.quick else 'full'} run")
    with machine_load():
        measure(args, shape, batch, width, warmup, repeats, device, dtype, amp, channels_last)


def measure(args, shape, batch, width, warmup, repeats, device, dtype, amp, channels_last) -> None:
    """The three measurements of :func:`main`, printed as they finish."""
    report(f"activation alone, forward+backward, train mode, tensor {shape} {str(dtype)[6:]}"
           f"{', channels_last' if channels_last else ''}:",
           activation_alone(shape, device, dtype, warmup, repeats))
    report(f"ResNet-18 (CIFAR, width {width}) training step, batch {batch}"
           f"{', bf16 autocast + channels_last' if amp else ', fp32'} (SGD step included):",
           resnet18_steps(batch, width, device, amp, channels_last, warmup, repeats), TARGET_STEP_RATIO)
    if not args.no_overhead:
        from trial_overhead import trial_overhead  # benchmarks/ is sys.path[0] when run as a script

        print("\nsweep per-trial overhead (Ray Tune + Optuna + MLflow vs a plain loop):")
        trial_overhead(10 if args.quick else 100)


if __name__ == "__main__":
    main()
