"""A non-editable install ships only ``fewbits.*`` and a working ``fewbits`` command.

The fast test builds the wheel (no dependencies, no build isolation: nothing is
downloaded) from a copy of the sources in tmp_path and reads its file list; the
slow one really ``pip install``s it into a fresh venv and runs it from outside the
repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIR: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]  # fewbits.hw -> hw
BARE = ("sim", "hw", "training", "cosim")


def _copy_if_still_there(src: str, dst: str) -> None:
    try:
        shutil.copy2(src, dst)
    except FileNotFoundError:  # a temporary file of a concurrent run vanished mid-copy
        pass


def source_copy(dest: Path) -> Path:
    """The files a build reads, copied so that build/ and *.egg-info never land in the repo."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for folder in sorted(set(PACKAGE_DIR.values())):
        shutil.copytree(ROOT / folder, dest / folder, copy_function=_copy_if_still_there,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    return dest


def build_wheel(tmp: Path) -> Path:
    src = source_copy(tmp / "src")
    out = tmp / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "--no-index", "-q", "-w", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"pip wheel failed:\n{proc.stdout}\n{proc.stderr}"
    wheels = list(out.glob("fewbits-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def expected_modules() -> set[str]:
    """Every .py file of every mapped folder, under its installed name (hw/mac.py -> fewbits/hw/mac.py)."""
    names = set()
    for package, folder in PACKAGE_DIR.items():
        base = ROOT / folder
        for path in base.rglob("*.py"):
            rel = path.relative_to(base)
            if "__pycache__" in rel.parts or any(p.endswith(".egg-info") for p in rel.parts):
                continue
            names.add("/".join([*package.split("."), *rel.parts]))
    return names


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_installs_only_the_fewbits_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"fewbits", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    assert not any(n.split("/", 1)[0] in BARE for n in names)


def test_wheel_ships_every_module_of_every_subpackage(wheel):
    """A sub-folder missing from the explicit ``packages`` list would silently not be installed."""
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py")}
    missing = expected_modules() - shipped
    assert not missing, f"not in the wheel (add the sub-package to pyproject.toml): {sorted(missing)}"
    for sub in ("sim", "hw", "training", "cosim"):
        assert f"fewbits/{sub}/__init__.py" in shipped


def test_wheel_declares_the_fewbits_command(wheel):
    with zipfile.ZipFile(wheel) as zf:
        (ep,) = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        entry_points = zf.read(ep).decode()
    assert "[console_scripts]" in entry_points
    assert "fewbits = fewbits.cli:main" in entry_points


@pytest.mark.slow
def test_pip_install_into_a_clean_venv_gives_a_working_command(tmp_path):
    """Real ``pip install`` (not editable) into a new venv, run from a directory outside the repo.

    The venv sees the project venv's site-packages through a ``.pth`` line (a
    ``--system-site-packages`` venv would see the base interpreter's, not ours), so
    dependencies, pip and setuptools resolve without downloads; fewbits itself must
    come from the new venv.
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "_fewbits_project_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    src = source_copy(tmp_path / "src")
    install = subprocess.run([str(py), "-m", "pip", "install", "--no-build-isolation", "--no-index", str(src)],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stdout + install.stderr

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    helped = subprocess.run([str(venv / "bin" / "fewbits"), "--help"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert "train" in helped.stdout and "demo" in helped.stdout

    probe = ("import importlib.util, fewbits, fewbits.sim, fewbits.hw, fewbits.training, fewbits.cosim\n"
             "print(fewbits.__file__)\n"
             f"print([m for m in {BARE!r} if importlib.util.find_spec(m) is not None])\n")
    proc = subprocess.run([str(py), "-c", probe], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    where, bare = proc.stdout.strip().splitlines()
    assert Path(where).is_relative_to(site), f"fewbits imported from {where}, not from the new venv"
    assert bare == "[]"
