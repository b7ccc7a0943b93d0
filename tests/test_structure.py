"""The shape of the code base, checked: dependencies point one way, trainables stay thin, core
modules stay readable, each model family has one run config, and the repository stands alone.

These read the source (``ast``), so they are fast and need no Ray or MLflow.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("dham_core", "trainables", "sweeps", "tracking", "analysis")
# The torch-free reference modules that analysis may read (published numbers, closed forms).
ANALYSIS_MAY_READ = {"dham_core.published", "dham_core.formulas"}
# The one public entry through which a sweep prints its report at the end.
SWEEPS_MAY_READ_ANALYSIS = {"analysis.report"}
TRAINABLE_MAX_LINES = 80
CORE_MAX_LINES = 500
LONG_MODULE_MARK = "Longer than"  # a core module over the limit says why in its docstring


def project_modules() -> dict[str, Path]:
    mods = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            mods[".".join(path.relative_to(REPO).with_suffix("").parts)] = path
    return mods


def imports_of(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) of every import statement (lazy ones inside functions too)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.extend((a.name, [], node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names], node.lineno))
    return out


def arrows() -> set[tuple[str, str]]:
    """(importer, imported project module) for every import between project modules."""
    mods = project_modules()
    edges = set()
    for name, path in mods.items():
        for module, names, _ in imports_of(path):
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in mods] or [module]
            for target in targets:
                if target.split(".")[0] in PACKAGES and target != name and target in mods:
                    edges.add((name, target))
    return edges


def is_script(module: str) -> bool:
    """A runnable sweep script (``python sweeps/X.py``): it has a ``__main__`` block."""
    return 'if __name__ == "__main__"' in project_modules()[module].read_text()


def allowed(src: str, dst: str) -> bool:
    a, b = src.split(".")[0], dst.split(".")[0]
    if a == b:
        # inside sweeps: scripts use the runner's modules and shared presets, never another script
        return a != "sweeps" or not is_script(dst)
    return {
        "dham_core": lambda: False,
        "tracking": lambda: False,
        "trainables": lambda: b == "dham_core",
        "analysis": lambda: b == "tracking" or dst in ANALYSIS_MAY_READ,
        "sweeps": lambda: b in ("trainables", "tracking", "dham_core") or dst in SWEEPS_MAY_READ_ANALYSIS,
    }[a]()


def test_the_checker_sees_the_arrows_it_must():
    edges = arrows()
    assert ("sweeps.temperature", "trainables.dham") in edges
    assert any(src.startswith("trainables.") and dst.startswith("dham_core.") for src, dst in edges)
    assert not allowed("dham_core.train", "tracking.store")
    assert not allowed("analysis.hopfield", "dham_core.hopfield_train")
    assert not allowed("sweeps.runner", "analysis.decisivenets")
    assert not allowed("sweeps.ell", "sweeps.temperature") and allowed("sweeps.ell", "sweeps.runner")
    assert allowed("analysis.hopfield", "dham_core.formulas")


def test_imports_point_only_downward():
    bad = sorted(f"{src} -> {dst}" for src, dst in arrows() if not allowed(src, dst))
    assert not bad, "imports against the layering (sweeps → trainables → dham_core; sweeps → " \
                    "tracking; analysis → tracking):\n" + "\n".join(bad)


def test_no_private_names_imported_across_modules():
    bad = []
    for name, path in project_modules().items():
        for module, names, line in imports_of(path):
            if module.split(".")[0] in PACKAGES and module != name:
                bad += [f"{path.relative_to(REPO)}:{line} imports {module}.{n}"
                        for n in names if n.startswith("_")]
    assert not bad, "\n".join(bad)


def test_string_named_imports_say_why():
    """importlib/__import__ hides an arrow from readers: allowed only with a comment on the
    line or the line before it saying it is a plugin point."""
    bad = []
    for name, path in project_modules().items():
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if "import_module(" in line or "__import__(" in line:
                context = " ".join(lines[max(0, i - 2):i + 1]).lower()
                if "plugin" not in context:
                    bad.append(f"{path.relative_to(REPO)}:{i + 1}: {line.strip()}")
    assert not bad, "\n".join(bad)


# Every module of trainables/ stays thin, the shared ones (common.py, pack.py) too.
TRAINABLES = sorted(p for p in (REPO / "trainables").glob("*.py") if p.name != "__init__.py")


def test_trainables_are_found():
    assert {p.name for p in TRAINABLES} >= {"dham.py", "resonator.py", "hopfield.py"}


@pytest.mark.parametrize("path", TRAINABLES, ids=lambda p: p.name)
def test_trainables_are_thin(path):
    lines = len(path.read_text().splitlines())
    assert lines <= TRAINABLE_MAX_LINES, f"{path.name}: {lines} lines (> {TRAINABLE_MAX_LINES})"


@pytest.mark.parametrize("path", sorted((REPO / "dham_core").glob("*.py")), ids=lambda p: p.name)
def test_core_modules_are_readable_in_one_sitting(path):
    text = path.read_text()
    lines = len(text.splitlines())
    doc = ast.get_docstring(ast.parse(text)) or ""
    assert lines <= CORE_MAX_LINES or LONG_MODULE_MARK in doc, (
        f"{path.name}: {lines} lines; split it or say why in its docstring ('{LONG_MODULE_MARK} ...')")


def family(module: str) -> str:
    """The model family a config module belongs to, by file name."""
    stem = module.rsplit(".", 1)[-1]
    for prefix, name in (("hopfield", "hopfield"), ("dam", "hopfield"), ("clique", "clique"), ("resonator", "resonator"),
                         ("sbc", "resonator"), ("dham", "dham"), ("train", "dham"),
                         ("models", "dham"), ("activation", "dham"), ("noop", "noop")):
        if stem.startswith(prefix):
            return name
    return stem


def config_classes() -> list[tuple[str, type]]:
    out = []
    for name in project_modules():
        if not name.startswith(("dham_core.", "trainables.")):
            continue
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if (dataclasses.is_dataclass(obj) and isinstance(obj, type) and obj.__module__ == name
                    and obj.__name__.endswith(("Config", "Cell"))):
                out.append((family(name), obj))
    return out


def default_of(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return "<required>"


def conflicting_defaults(classes: list[tuple[str, type]]) -> list[str]:
    """Fields declared by two configs of the same family with different defaults."""
    bad = []
    for i, (fam_a, a) in enumerate(classes):
        for fam_b, b in classes[i + 1:]:
            if fam_a != fam_b:
                continue
            own_a = {f.name: f for f in dataclasses.fields(a)}
            for f in dataclasses.fields(b):
                if f.name in own_a and default_of(own_a[f.name]) != default_of(f):
                    bad.append(f"{fam_a}: {a.__name__}.{f.name}={default_of(own_a[f.name])!r} vs "
                               f"{b.__name__}.{f.name}={default_of(f)!r}")
    return bad


def test_conflict_check_catches_a_second_config_with_other_defaults():
    @dataclasses.dataclass
    class OneConfig:
        lr: float = 0.1
        epochs: int = 3

    @dataclasses.dataclass
    class OtherConfig:
        lr: float = 0.02
        epochs: int = 3

    found = conflicting_defaults([("x", OneConfig), ("x", OtherConfig)])
    assert found == ["x: OneConfig.lr=0.1 vs OtherConfig.lr=0.02"]
    assert conflicting_defaults([("x", OneConfig), ("y", OtherConfig)]) == []


def test_one_config_per_model_family():
    classes = config_classes()
    assert {fam for fam, _ in classes} >= {"dham", "hopfield"}, classes
    bad = conflicting_defaults(classes)
    assert not bad, "two configs of one family disagree on a default:\n" + "\n".join(bad)


def test_repository_stands_alone():
    """No file cites material outside the repository (the papers' notes live in docs/)."""
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    words = ("PAPERS" + ".md", "ENV-" + "NOTES", "../" + "shared")  # split so this file passes
    bad = [f"{f}: {w}" for f in files if (REPO / f).is_file()
           for w in words if w in (REPO / f).read_text(errors="ignore")]
    assert not bad, "\n".join(bad)


def test_docs_cited_by_code_exist():
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    import re

    cited = {m for f in files for m in re.findall(r"docs/[\w.-]+\.md", (REPO / f).read_text())}
    missing = sorted(c for c in cited if not (REPO / c).is_file())
    assert cited and not missing, f"code cites missing docs pages: {missing}"


def test_analysis_and_tracking_import_no_torch():
    """Analysis reads MLflow: importing every analysis and tracking module must not pull in
    torch (nor the core's torch modules)."""
    mods = [m for m in project_modules() if m.startswith(("analysis.", "tracking."))]
    code = ("import importlib, sys\n"
            f"for m in {mods!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('dham_core.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = eval(out.stdout.strip().splitlines()[-1])
    assert "torch" not in loaded and set(loaded) <= ANALYSIS_MAY_READ, loaded
