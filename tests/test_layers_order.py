"""vidlab's layers import only downward (DESIGN: errors/utils -> data, models (+ viz.capture) -> train -> run -> zoo ->
CLI, course, notebooks). Every import counts, those inside functions included: a cycle hidden in a function is
still a cycle."""
from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vidlab"

# Lowest layer first. A module may import modules of a lower layer and of its own group; two groups of one layer
# (data and models, train and profile, ...) do not import each other. Every module of the package must be listed.
LAYERS = [
    {"base": ["vidlab.errors", "vidlab.utils"]},
    {"capture": ["vidlab.viz", "vidlab.viz.capture", "vidlab.viz.scores", "vidlab.viz.diagram"]},
    {"data": ["vidlab.data", "vidlab.data.*"],
     "models": ["vidlab", "vidlab.models", "vidlab.models.*"]},     # vidlab/__init__ is create_model & co.
    {"train": ["vidlab.train"],
     "profile": ["vidlab.profile"],
     "analysis": ["vidlab.viz.attribution", "vidlab.viz.plots", "vidlab.viz.widgets", "vidlab.viz.signature"]},
    {"pretrain": ["vidlab.pretrain"]},
    {"run": ["vidlab.run"]},
    {"zoo": ["vidlab.zoo"]},
    {"nb": ["vidlab.nb"], "course": ["vidlab.course"], "cli": ["vidlab.__main__"]},
]
# What the data and the models never import, however indirectly it would come
LOW_FORBIDDEN = ["vidlab.train", "vidlab.pretrain", "vidlab.profile", "vidlab.zoo", "vidlab.run", "vidlab.course",
                 "vidlab.nb", "vidlab.__main__"]


def module_name(path: Path, package: Path) -> str:
    parts = ("vidlab",) + path.relative_to(package).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path) -> dict[str, Path]:
    return {module_name(p, package): p for p in sorted(package.rglob("*.py"))}


def imports(path: Path, package: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) for every vidlab module `path` imports: `import`, `from ... import` (relative ones resolved;
    `from . import x` names module x when it is one) and `importlib.import_module("...")` with a constant name."""
    me = module_name(path, package)
    pkg = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.append((node.lineno, sub if sub in known else target))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return [(line, m) for line, m in found if m == "vidlab" or m.startswith("vidlab.")]


def place(module: str) -> tuple[int, str] | None:
    """(layer, group) of a module: the most specific pattern that names it."""
    best = None
    for level, groups in enumerate(LAYERS):
        for group, patterns in groups.items():
            for pat in patterns:
                if fnmatch.fnmatchcase(module, pat) and (best is None or len(pat) > best[0]):
                    best = (len(pat), level, group)
    return best[1:] if best else None


def violations(package: Path) -> list[str]:
    mods = modules(package)
    bad = [f"{m}: not in LAYERS (tests/test_layers_order.py); give it a layer" for m in mods if place(m) is None]
    for me, path in mods.items():
        here = place(me)
        if here is None:
            continue
        for line, target in imports(path, package, set(mods)):
            there = place(target)
            if there is None or target == me:
                continue
            if there[0] > here[0] or (there[0] == here[0] and there[1] != here[1]):
                bad.append(f"{path.relative_to(package.parent)}:{line}: {me} ({here[1]}) imports {target} "
                           f"({there[1]}), which sits {'above' if there[0] > here[0] else 'beside'} it")
    return bad


def test_every_import_goes_down_the_layers():
    assert violations(PACKAGE) == []


@pytest.mark.parametrize("low", ["vidlab/data", "vidlab/models"])
def test_data_and_models_import_no_training_profiling_zoo_or_course(low):
    mods = modules(PACKAGE)
    bad = []
    for path in sorted((PACKAGE.parent / low).rglob("*.py")):
        for line, target in imports(path, PACKAGE, set(mods)):
            if any(target == f or target.startswith(f + ".") for f in LOW_FORBIDDEN):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}")
    assert bad == []


def test_the_checker_sees_imports_inside_functions(tmp_path):
    """A module of the data layer that imports the trainer inside a function, and a model that imports the zoo."""
    pkg = tmp_path / "vidlab"
    (pkg / "data").mkdir(parents=True)
    (pkg / "models").mkdir()
    for f in ("__init__.py", "errors.py", "train.py", "zoo.py", "data/__init__.py", "models/__init__.py"):
        (pkg / f).write_text("")
    (pkg / "data" / "reader.py").write_text("from ..errors import VidlabError\n\n\ndef f():\n"
                                            "    from ..train import Trainer\n")
    (pkg / "models" / "net.py").write_text("import importlib\n\n\ndef g():\n"
                                           "    return importlib.import_module('vidlab.zoo')\n")
    found = violations(pkg)
    assert len(found) == 2, found
    assert "vidlab/data/reader.py:5" in found[0] and "vidlab.train" in found[0]
    assert "vidlab/models/net.py:5" in found[1] and "vidlab.zoo" in found[1]
