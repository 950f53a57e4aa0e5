"""The set-up files agree with each other (pyproject, environment.yml, Makefile, .ci/run, README), the decord2
environment marker selects the platforms decord2 has wheels for, and `pip wheel .` builds a wheel that installs
into a fresh venv holding only torch (+ numpy, tqdm, PyAV) and works there (PyAV as the only decoder, the Kinetics
class presets found inside the installed package)."""
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
TESTED_TORCH = "2.13.0"  # the version the Makefile installs and the tests run on; pyproject's lower bound


def _pyproject_deps() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + meta["optional-dependencies"]["dev"]
    return {re.split(r"[=<>!~ ]", r, maxsplit=1)[0].lower(): r.replace(" ", "") for r in reqs}


def _requirement(name: str) -> Requirement:
    """pyproject's requirement on `name`, parsed (markers need their spaces, which _pyproject_deps drops)."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (req,) = [r for r in map(Requirement, meta["dependencies"] + meta["optional-dependencies"]["dev"])
              if r.name.lower() == name]
    return req


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


def test_lower_bounds_only_torch_from_the_tested_version():
    """No exact pins (they clash with an environment that already has torch, e.g. Colab or a CUDA build)."""
    for name in _pyproject_deps():
        req = _requirement(name)
        assert all(s.operator == ">=" for s in req.specifier), f"{req}: use lower bounds only"
    torch_floor = _requirement("torch").specifier
    assert str(torch_floor) == ">=" + TESTED_TORCH.rsplit(".", 1)[0], torch_floor
    assert f"torch=={TESTED_TORCH}" in (ROOT / "Makefile").read_text()


def _marker_env(system: str, machine: str, python: str = "3.11") -> dict:
    return {"sys_platform": system, "platform_machine": machine, "python_version": python,
            "platform_system": {"linux": "Linux", "darwin": "Darwin", "win32": "Windows"}[system]}


@pytest.mark.parametrize("system,machine,python,wanted", [
    ("linux", "x86_64", "3.11", True), ("linux", "aarch64", "3.12", True),     # manylinux_2_28 wheels
    ("darwin", "arm64", "3.13", True), ("win32", "AMD64", "3.10", True),       # macOS 14+ arm64, Windows x86-64
    ("darwin", "x86_64", "3.11", False), ("win32", "ARM64", "3.11", False),    # no wheels: PyAV alone
    ("linux", "ppc64le", "3.11", False), ("linux", "armv7l", "3.11", False),
    ("linux", "x86_64", "3.15", False),                                        # no cp315 wheels published
])
def test_decord2_only_where_it_has_wheels(system, machine, python, wanted):
    req = _requirement("decord2")
    assert req.marker is not None and req.marker.evaluate(_marker_env(system, machine, python)) is wanted
    assert _requirement("av").marker is None      # PyAV everywhere: the fallback decoder


def test_version_and_info_name_the_decoder(monkeypatch, capsys):
    import vidlab
    from vidlab import __main__ as cli
    from vidlab.data import io
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"vidlab {vidlab.__version__}; video decoder: {io.available_backends()[0]}")
    assert vidlab.__version__ == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    monkeypatch.setattr(io, "available_backends", lambda: ["pyav"])     # as on a platform without decord2
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "video decoder: pyav (PyAV " in out and "falls back" not in out and "torch " in out
    monkeypatch.setattr(io, "available_backends", lambda: [])
    assert cli._decoder_status() == "video decoder: none installed (pip install av)"


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


# --------------------------------------------------------------------------------------------------------------
# The wheel, installed into a fresh venv
# --------------------------------------------------------------------------------------------------------------

def _local_pip_sources() -> list[str]:
    """pip options that reach only package sources on this machine (the configured find-links and file:// indexes):
    the fresh venv is filled offline. Empty when pip has no local source configured."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    values = []
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.rsplit(".", 1)[-1] in ("find-links", "index-url", "extra-index-url"):
            values += [(key.rsplit(".", 1)[-1], v) for v in value.strip("'\"").split()]
    values += [("find-links", v) for v in os.environ.get("PIP_FIND_LINKS", "").split()]
    indexes = sorted({v for k, v in values if k.endswith("index-url") and v.startswith("file://")
                      and Path(v[7:]).is_dir()})
    links = sorted({v for k, v in values if k == "find-links" and Path(v.removeprefix("file://")).is_dir()})
    opts = ["--index-url", indexes[0]] + [a for i in indexes[1:] for a in ("--extra-index-url", i)] if indexes \
        else ["--no-index"]
    return opts + [a for link in links for a in ("--find-links", link)] if (indexes or links) else []


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_with_torch(tmp_path):
    """`pip wheel . --no-deps` -> a wheel with every module and the right metadata; installed with --no-deps into a
    new venv that has torch (and numpy, tqdm, PyAV, none of decord2), vidlab imports, builds and runs a model,
    resolves the Kinetics class presets outside the repository, and reads a video with PyAV. About 40 s here, most
    of it installing torch."""
    sources = _local_pip_sources()
    if not sources:
        pytest.skip("no local pip source (find-links / file:// index) to fill a fresh venv with torch offline")
    # Build from a copy so that setuptools' build/ and egg-info never touch the work tree (build/ is the course).
    src = tmp_path / "src"
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name) if src.exists() else (src.mkdir(), shutil.copy(ROOT / name, src / name))
    shutil.copytree(ROOT / "vidlab", src / "vidlab", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                        "-w", str(dist), "-q"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = dist.glob("vidlab-*.whl")
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert wheel.name == f"vidlab-{meta['version']}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        metadata = z.read(f"vidlab-{meta['version']}.dist-info/METADATA").decode()
        entry_points = z.read(f"vidlab-{meta['version']}.dist-info/entry_points.txt").decode()
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "vidlab").rglob("*.py")}
    assert modules <= names, f"missing from the wheel: {sorted(modules - names)}"
    presets = {p.relative_to(ROOT).as_posix() for p in (ROOT / "vidlab" / "data" / "presets").glob("*.txt")}
    assert presets and presets <= names, f"class presets missing from the wheel: {sorted(presets - names)}"
    requires = {Requirement(line.split(":", 1)[1].strip()).name: Requirement(line.split(":", 1)[1].strip())
                for line in metadata.splitlines() if line.startswith("Requires-Dist:")}
    assert str(requires["torch"].specifier) == ">=2.13" and requires["decord2"].marker is not None
    assert "vidlab = vidlab.__main__:main" in entry_points

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")} | {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", *sources, f"torch=={TESTED_TORCH}", "numpy", "tqdm",
                        "av"], capture_output=True, text=True, timeout=600, env=env)
    if r.returncode != 0:
        pytest.skip(f"torch {TESTED_TORCH}, numpy, tqdm or av not available offline: {r.stderr.strip()[-300:]}")
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], capture_output=True,
                       text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    check = """
import sys, tempfile, numpy as np, torch, vidlab
from pathlib import Path
assert Path(vidlab.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()), vidlab.__file__
m = vidlab.create_model("vit_joint_nano", num_classes=3, num_frames=4, img_size=32)
assert m(torch.randn(1, 3, 4, 32, 32)).shape == (1, 3)
from vidlab.data.kinetics import resolve_class_list
assert len(resolve_class_list("k400_motion10")) == 10 and len(resolve_class_list("k400-motion50")) == 50
from vidlab.data.io import VideoReader, available_backends, write_video
assert available_backends() == ["pyav"], available_backends()
p = write_video(Path(tempfile.mkdtemp()) / "c.mp4", np.full((6, 32, 32, 3), 128, np.uint8))
r = VideoReader(p)
assert (r.backend, r.num_frames, r.get_frames(np.arange(6)).shape) == ("pyav", 6, (6, 32, 32, 3))
print("ok", vidlab.__version__, torch.__version__)
"""
    r = subprocess.run([str(py), "-c", check], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("ok "), r.stdout + r.stderr[-3000:]
    r = subprocess.run([str(bindir / "vidlab"), "--version"], capture_output=True, text=True, timeout=120, env=env,
                       cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == f"vidlab {meta['version']}; video decoder: pyav (PyAV " \
        + r.stdout.split("(PyAV ", 1)[-1].strip(), r.stdout + r.stderr
