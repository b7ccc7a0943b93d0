"""Smoke tests that run the real benchmark scripts (tiny sizes): they must run and print their
side-by-side figures. The figures themselves are measured with the full runs (README)."""
import re

import pytest

from conftest import run_script

BENCHMARKS = [
    (["benchmarks/activation.py", "--quick", "--no-overhead"], [r"ResNet-18 .* training step",
                                                                r"ratio +\d+\.\d+"]),
    (["benchmarks/trial_overhead.py", "--quick"], [r"overhead per trial: \d+\.\d+ s"]),
    (["benchmarks/hopfield.py", "--quick"], [r"\d+\.\d+ ?x"]),
]


@pytest.mark.parametrize("argv, patterns", BENCHMARKS, ids=[b[0][0] for b in BENCHMARKS])
def test_benchmark_quick_run(argv, patterns, sweep_env):
    proc = run_script(argv, sweep_env, timeout=600)
    for pattern in patterns:
        assert re.search(pattern, proc.stdout), (pattern, proc.stdout[-3000:])
