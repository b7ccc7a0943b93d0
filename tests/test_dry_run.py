"""``--dry-run``: every sweep script × preset × search mode it offers validates its whole plan,
prints it and exits 0 with nothing started; TPE spaces are checked in combination; resonator
packs drop their (a, M) cells with a > M.

Sweep scripts are found by globbing ``sweeps/*.py`` for a ``__main__`` block, so a new script or
preset is covered without editing this file. A script with a ``SWEEP`` runs through
``sweeps.runner.main``; any other (``scaling.py``) exposes ``main(argv)``.
"""
import dataclasses
import importlib
import itertools
import math
import re

import pytest
import ray
from optuna.distributions import CategoricalDistribution, FloatDistribution

from conftest import REPO, run_script
from dham_core.resonator_pack import expand_pack
from sweeps import resonator_capacity, resonator_vs_dense
from sweeps.plan import MAX_TPE_CHECKS, space_corners, tpe_checks
from sweeps.runner import Preset, Sweep, main
from trainables.resonator import TRACE_KEY

SCRIPTS = sorted(p.stem for p in (REPO / "sweeps").glob("*.py")
                 if 'if __name__ == "__main__":' in p.read_text())


def _cases():
    for name in SCRIPTS:
        sweep = getattr(importlib.import_module(f"sweeps.{name}"), "SWEEP", None)
        if sweep is None:
            yield name, None, None
            continue
        for preset_name, preset in sweep.presets.items():
            for search in preset.searches:
                yield name, preset_name, search


CASES = list(_cases())


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Every store a launch could create points into an empty folder (``state``)."""
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{state / 'mlflow.db'}")
    monkeypatch.setenv("DHAM_STORAGE_PATH", str(state / "ray"))
    monkeypatch.setenv("DHAM_OPTUNA_STORAGE", str(state / "optuna.journal"))
    monkeypatch.setenv("DHAM_RESULTS_DIR", str(state / "results"))
    monkeypatch.setenv("RAY_TMPDIR", str(state / "ray_tmp"))  # a Ray session would go here
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return state


def _planned_trials(sweep: Sweep, preset: str, search: str, pins: dict) -> int:
    """The oracle: a grid's cells are the product of its axes' lengths (pinned axes left
    out); a TPE search runs the preset's num_samples."""
    p = sweep.presets[preset]
    if search == "tpe":
        return p.num_samples
    axes = p.grid if p.grid is not None else sweep.grid
    return math.prod(len(v) for k, v in axes.items() if k not in pins)


def test_every_script_is_covered():
    assert {"temperature", "resonator_capacity", "scaling", "hopfield_power"} <= set(SCRIPTS)
    assert ("resonator_capacity", "pareto", "tpe") in CASES
    assert ("resonator_capacity", "cpu", "tpe") not in CASES  # grid-only preset


@pytest.mark.parametrize("name, preset, search", CASES,
                         ids=[f"{n}:{p}:{s}" if p else n for n, p, s in CASES])
def test_dry_run_plans_and_starts_nothing(name, preset, search, isolated, capsys):
    module = importlib.import_module(f"sweeps.{name}")
    sweep = getattr(module, "SWEEP", None)
    if sweep is None:
        assert module.main(["--dry-run", "--workers", "1,2"]) is None
        out = capsys.readouterr().out
        plans = re.findall(r"\[dry-run\] plan: script=(\S+) .*?trials=(\d+)", out)
        assert plans[-1][0] == name
        assert int(plans[-1][1]) == 2 * sum(int(t) for _, t in plans[:-1])  # 2 worker counts
    else:
        pins = sweep.tpe_pins if search == "tpe" else {}
        argv = ["--dry-run", "--preset", preset, "--search", search]
        for key, value in pins.items():
            argv += ["--set", f"{key}={value}"]
        assert main(sweep, argv) is None
        out = capsys.readouterr().out
        variant = sweep.for_argv(argv) if sweep.for_argv else sweep
        trials = _planned_trials(variant, preset, search, pins)
        assert (f"[dry-run] plan: script={sweep.name} preset={preset} search={search} "
                f"trials={trials} ") in out, out
        assert "a dry run opens neither MLflow nor the Optuna storage" in out
    assert not ray.is_initialized()
    assert list(isolated.iterdir()) == []  # no MLflow db, journal, Ray results or session


def test_dry_run_from_the_command_line(sweep_env, tmp_path):
    """A real subprocess: fig3.6's a grid crosses small M; the dropped cells are counted."""
    proc = run_script(["sweeps/resonator_capacity.py", "--preset", "fig3.6", "--dry-run"],
                      sweep_env, timeout=300)
    preset = resonator_capacity.SWEEP.presets["fig3.6"]
    a_values, m_values = preset.grid["a"], preset.config["M"]
    dropped = sum(a != "M" and a > m for a in a_values for m in m_values)
    assert dropped > 0
    assert f"trials={len(a_values)} " in proc.stdout, proc.stdout
    assert f"{dropped} (a, M) cells with a > M dropped" in proc.stdout, proc.stdout
    assert f"{len(a_values) * len(m_values) - dropped} in all" in proc.stdout, proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing created


def test_bad_input_in_a_dry_run_exits_2(isolated, capsys):
    with pytest.raises(SystemExit) as exc:
        main(resonator_capacity.SWEEP, ["--dry-run", "--preset", "cpu", "--search", "tpe"])
    assert exc.value.code == 2
    assert "--search must be one of grid with --preset cpu" in capsys.readouterr().err
    assert list(isolated.iterdir()) == [] and not ray.is_initialized()


# ---- (a, M) cells of resonator packs -------------------------------------------------------

def _resonator_points():
    for sweep in (resonator_capacity.SWEEP, resonator_vs_dense.SWEEP):
        for name, preset in sweep.presets.items():
            axes = preset.grid if preset.grid is not None else sweep.grid
            for combo in itertools.product(*axes.values()):
                config = {**preset.config, **dict(zip(axes, combo))}
                config.pop(TRACE_KEY, None)  # the trainable's, not a cell's (fig3.2)
                yield name, config


@pytest.mark.parametrize("preset, config", list(_resonator_points()))
def test_pack_cells_are_the_product_less_a_above_m(preset, config):
    """Oracle: the product of the list-valued keys, less the sparse (a, M) pairs with a > M.
    Presets without such pairs (they launched before) keep every cell."""
    listed = {k: v if isinstance(v, list) else [v] for k, v in config.items()}
    expected = [dict(zip(listed, combo)) for combo in itertools.product(*listed.values())]
    for cell in expected:  # a = "M": the cell keeps all M codewords (thesis Fig 3.6's a = M line)
        if cell.get("a") == "M":
            cell["a"] = cell["M"]
    kept = [c for c in expected if c.get("kind", "sparse") == "dense" or c["a"] <= c["M"]]
    cells, dropped = expand_pack(config)
    assert dropped == len(expected) - len(kept)
    got = sorted((c.kind, c.M, c.a, c.D, c.seed) for c in cells)
    want = sorted({(c.get("kind", "sparse"), c["M"], None if c.get("kind") == "dense" else c["a"],
                    c["D"], c.get("seed", 0)) for c in kept})
    assert got == want


def test_single_cell_with_a_above_m_is_refused():
    with pytest.raises(ValueError, match=r"a must satisfy 1 <= a <= M = 5 \(got a=8\)"):
        expand_pack({"D": 1024, "k": 64, "V": 3, "M": 5, "a": 8})
    with pytest.raises(ValueError, match="a must satisfy"):  # every pack cell dropped
        expand_pack({"D": 1024, "k": 64, "V": 3, "M": [5, 10], "a": 40})


# ---- TPE spaces checked in combination -----------------------------------------------------

def _fake_sweep(space: dict, validate) -> Sweep:
    from trainables.noop import train_noop

    return Sweep(name="fake", table="trials", trainable=train_noop, space=space, grid={},
                 presets={"smoke": Preset({"epochs": 1})}, metric="score", mode="max",
                 validate=validate)


def _refuse_both_high(config):
    if config["x"] == 1.0 and config["y"] == "b":
        raise ValueError("x=1.0 cannot go with y='b'")


@pytest.mark.parametrize("dry_run", [True, False])
def test_tpe_combination_refused_before_launch(dry_run, isolated, capsys):
    space = {"x": FloatDistribution(0.0, 1.0), "y": CategoricalDistribution(["a", "b"])}
    for corner in space_corners(space):  # every extreme passes alone ...
        _refuse_both_high({"seed": 0, **corner})
    with pytest.raises(SystemExit) as exc:  # ... the combination does not
        main(_fake_sweep(space, _refuse_both_high), ["--search", "tpe"] + ["--dry-run"] * dry_run)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "x=1.0 cannot go with y='b' (at the TPE space combination" in err, err
    assert "x=1.0, y='b')" in err, err
    assert list(isolated.iterdir()) == [] and not ray.is_initialized()


def test_resonator_k_must_divide_d_in_combination(isolated, capsys):
    """A real validator: k = 64 and k = 40 both divide D = 1280, k = 64 divides D = 2048, but
    k = 40 does not divide 2048 — only the combination fails."""
    space = {"D": CategoricalDistribution([1280, 2048]), "k": CategoricalDistribution([64, 40])}
    preset = Preset({"V": 3, "M": [10], "a": 4, "num_problems": 8}, space=space)
    sweep = dataclasses.replace(resonator_capacity.SWEEP, presets={"combo": preset})
    with pytest.raises(SystemExit) as exc:
        main(sweep, ["--dry-run", "--search", "tpe", "--preset", "combo"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "k must divide D" in err and "D=2048, k=40" in err, err


def test_large_space_checks_extremes_and_a_seeded_sample(isolated, capsys):
    axes = 13  # 2**13 = 8192 combinations > MAX_TPE_CHECKS
    space = {f"x{i}": FloatDistribution(0.0, 1.0) for i in range(axes)}
    points, total = tpe_checks(space)
    assert total == 2 ** axes > MAX_TPE_CHECKS
    corners = space_corners(space)
    assert points[:len(corners)] == corners and len(corners) == 2 * axes
    sample = points[len(corners):]
    assert len(sample) == MAX_TPE_CHECKS
    assert len({tuple(p.values()) for p in sample}) == MAX_TPE_CHECKS  # without replacement
    assert all(set(p.values()) <= {0.0, 1.0} for p in sample)
    assert tpe_checks(space) == (points, total)  # seeded: the same on every launch
    main(_fake_sweep(space, lambda config: None), ["--dry-run", "--search", "tpe"])
    assert f"{len(points)} of {total} combinations" in capsys.readouterr().out
