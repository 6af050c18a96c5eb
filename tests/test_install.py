"""Cadenza from an installed wheel: the shipped bundles come inside the package, so an install
into any scheme plays at once, with no torch and nothing from this checkout.

The wheel is built once (from a copy of the sources, so the checkout gets no build/ folder) and
installed with `pip install --prefix` and with `pip install --user` into temporary homes. Each
install then runs from a temporary folder with the interpreter this venv was made from, whose
path holds only the install and the runtime dependencies: this venv's site-packages less
torch and less the checkout's own (editable) cadenza, and none of the interpreter's system
site-packages. `cadenza generate` and `cadenza audio --prompt` must both write their files.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import wave
from pathlib import Path

import mido
import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON = getattr(sys, "_base_executable", None) or sys.executable  # the venv's base Python

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX install layout")

# Left out of the dependency folder: torch and what comes with it, and the checkout's cadenza.
TORCH = ("torch", "functorch", "torchgen", "triton", "nvidia")
CHECKOUT = ("cadenza", "__editable__", "_cadenza")

# Run first in every interpreter the test starts: the base Python's own site-packages go off
# the path (it may hold anything, torch included), leaving the standard library, PYTHONPATH
# and the user site.
SITECUSTOMIZE = """\
import site, sys
_system = set(site.getsitepackages())
sys.path[:] = [p for p in sys.path if p not in _system]
"""

PROBE = """\
import importlib.util, json, sys
from importlib import resources
import cadenza
from cadenza import bundle
print(json.dumps({
    "cadenza": cadenza.__file__,
    "version": cadenza.__version__,
    "package_models": str(resources.files("cadenza.models")),
    "models_dirs": [str(d) for d in bundle.models_dirs()],
    "performance-rnn": str(bundle.default_bundle_path("performance-rnn")),
    "codec-lm": str(bundle.default_bundle_path("codec-lm")),
    "torch": importlib.util.find_spec("torch") is not None,
    "path": sys.path,
}))
"""


def _run(args, env, cwd, timeout=120):
    done = subprocess.run(
        [str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    command = " ".join(str(a) for a in args[:4])
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{command} ...: exit {done.returncode}\n{output}"
    return done.stdout


def _clean_env(home: Path) -> dict[str, str]:
    drop = ("PYTHON", "CADENZA_", "VIRTUAL_ENV", "XDG_", "PIP_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["HOME"] = str(home)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """cadenza-*.whl, built without network from a copy of what the wheel is made of."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("cadenza", "models"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, src / name)
    _run(
        [sys.executable, "-m", "pip", "wheel", src, "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", "-q", "-w", work / "dist"],
        os.environ | {"PIP_NO_INPUT": "1"}, work, timeout=300,
    )
    (found,) = (work / "dist").glob("cadenza-*.whl")
    return found


@pytest.fixture(scope="module")
def runtime_path(tmp_path_factory) -> list[Path]:
    """PYTHONPATH for a torch-free Cadenza: sitecustomize.py, then this venv's site-packages
    (its runtime dependencies: numpy, onnxruntime, mido, tokenizers...) as links, less torch
    and less the checkout's cadenza."""
    root = tmp_path_factory.mktemp("runtime")
    (root / "custom").mkdir()
    (root / "custom" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    deps = root / "deps"
    deps.mkdir()
    for folder in site.getsitepackages():
        for entry in sorted(Path(folder).iterdir()):
            name = entry.name
            if (name.startswith(TORCH + CHECKOUT) or name.endswith(".pth")
                    or name == "__pycache__" or (deps / name).exists()):
                continue
            (deps / name).symlink_to(entry)
    return [root / "custom", deps]


def _install(scheme: str, wheel: Path, runtime_path: list[Path], home: Path):
    """Install the wheel; returns (site-packages of the install, its `cadenza` script, env)."""
    env = _clean_env(home)
    pip = ["-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check",
           "--no-warn-script-location", "-q"]
    if scheme == "prefix":
        base = home / "prefix"
        _run([sys.executable, *pip, "--ignore-installed", "--prefix", base, wheel], env, home)
    else:  # --user: pip of this venv run by the base Python (a venv refuses --user)
        base = home / "userbase"
        env["PYTHONUSERBASE"] = str(base)
        pip_env = env | {"PYTHONPATH": str(runtime_path[1]), "PIP_BREAK_SYSTEM_PACKAGES": "1"}
        _run([PYTHON, *pip, "--user", "--ignore-installed", wheel], pip_env, home)
    (init,) = base.glob("**/cadenza/__init__.py")  # lib/python3.X/site-packages on Linux
    site_dir = init.parent.parent
    path = [runtime_path[0]] + ([site_dir] if scheme == "prefix" else []) + [runtime_path[1]]
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in path)
    (script,) = base.glob("**/bin/cadenza")
    return site_dir, script, env


@pytest.mark.parametrize("scheme", ["prefix", "user"])
def test_an_installed_wheel_plays_with_its_bundles_and_no_torch(
    scheme, wheel, runtime_path, tmp_path
):
    home = tmp_path / "home"
    home.mkdir()
    site_dir, script, env = _install(scheme, wheel, runtime_path, home)
    work = tmp_path / "elsewhere"
    work.mkdir()

    # Cadenza comes from the install, its bundles from inside it, and no torch is importable.
    probe = json.loads(_run([PYTHON, "-c", PROBE], env, work))
    package = site_dir / "cadenza"
    assert Path(probe["cadenza"]) == package / "__init__.py"
    assert Path(probe["package_models"]) == package / "models"
    assert probe["models_dirs"] == [str(package / "models")]
    assert probe["performance-rnn"] == str(package / "models" / "performance-rnn")
    assert probe["codec-lm"] == str(package / "models" / "codec-lm")
    assert not probe["torch"], "torch importable in the install's environment"
    assert not any(str(ROOT) in p for p in probe["path"]), probe["path"]
    assert probe["version"] == wheel.name.split("-")[1]
    assert (package / "py.typed").is_file()

    # `cadenza plugins` lists the shipped bundles, from the package.
    listed = _run([PYTHON, script, "plugins"], env, work)
    bundles = [line for line in listed.splitlines()[listed.splitlines().index("bundles:"):]
               if str(package / "models") in line]
    assert len(bundles) == len(list((ROOT / "models").glob("*/manifest.yaml"))), listed
    assert "invalid" not in listed

    # Both commands write their files.
    _run([PYTHON, script, "generate", "-o", "x.mid"], env, work)
    notes = [m for m in mido.MidiFile(work / "x.mid") if m.type == "note_on" and m.velocity]
    assert notes
    _run([PYTHON, script, "audio", "--prompt", "a flute", "--seconds", "1", "-o", "x.wav"],
         env, work)
    with wave.open(str(work / "x.wav")) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert 0.9 <= seconds <= 1.5


def test_every_package_is_listed_in_pyproject():
    """pyproject.toml lists the packages (a find would miss cadenza.models, which is models/):
    every folder of cadenza/ holding Python must be there, and every listed one must exist."""
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "cadenza").glob("**/*.py") if "__pycache__" not in p.parts
    }
    assert found - listed == set(), "add them to [tool.setuptools] packages in pyproject.toml"
    assert "cadenza.models" in listed and (ROOT / "models" / "__init__.py").is_file()
    for name in listed - {"cadenza.models"}:
        assert (ROOT / Path(*name.split("."))).is_dir(), name
