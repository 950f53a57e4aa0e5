"""The set-up files agree with each other: pyproject, environment.yml, Makefile, .ci/run, README."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_deps() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + meta["optional-dependencies"]["dev"]
    return {re.split(r"[=<>!~ ]", r, maxsplit=1)[0].lower(): r.replace(" ", "") for r in reqs}


def _environment_deps() -> dict[str, str]:
    """The pip requirements of environment.yml (the entries under `- pip:`)."""
    text = (ROOT / "environment.yml").read_text()
    deps = {}
    for line in text.split("- pip:", 1)[1].splitlines():
        m = re.match(r"^\s+- ([A-Za-z0-9_.\-]+)([=<>!~].*)?$", line)
        if m and m.group(1) != "-e":
            deps[m.group(1).lower()] = (m.group(1) + (m.group(2) or "")).replace(" ", "")
    return deps


def test_environment_yml_matches_pyproject():
    py, env = _pyproject_deps(), _environment_deps()
    assert set(py) == set(env), f"only in pyproject: {set(py) - set(env)}; only in environment.yml: {set(env) - set(py)}"
    for name, spec in py.items():
        assert env[name] == spec, f"{name}: pyproject says {spec!r}, environment.yml says {env[name]!r}"
    assert "python=3.11" in (ROOT / "environment.yml").read_text()


def test_only_torch_is_pinned_exactly():
    for name, spec in _pyproject_deps().items():
        if name == "torch":
            assert spec == "torch==2.13.0"
        else:
            assert "==" not in spec and "<" not in spec, f"{spec}: use lower bounds only"


def test_no_torchvision_or_timm_dependency():
    deps = _pyproject_deps()
    assert "torchvision" not in deps and "timm" not in deps and "decord" not in deps  # decord comes from decord2


def test_makefile_installs_torch_first_and_ci_runs_make_test():
    mk = (ROOT / "Makefile").read_text()
    assert mk.index("torch==2.13.0") < mk.index('-e ".[dev]"')
    assert "make test" in (ROOT / ".ci/run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme


def test_console_script_declared():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["scripts"]["vidlab"] == "vidlab.__main__:main"
