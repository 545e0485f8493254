"""`pip install .` ships the product only: a working `medledger` CLI without brownie, pytest or the
benchmarks (issue 12). Installs the repository into a fresh venv with the pinned constraints."""
import json
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What a source checkout holds beside the product; copied so that the build can prove it leaves them out
#: (and builds in the copy, not in the project's brownie `build/` folder).
SOURCES = ("pyproject.toml", "README.md", "constraints.txt", "medledger", "benchmarks", "scripts", "tests")


@pytest.fixture(scope="module")
def clean_install(tmp_path_factory):
    base = tmp_path_factory.mktemp("clean-install")
    src = base / "src"
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(path, src / name)
    venv.create(base / "venv", with_pip=True)
    bin_dir = base / "venv" / "bin"
    subprocess.run([bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-c", str(ROOT / "constraints.txt"), str(src)], check=True, capture_output=True, timeout=900)
    return bin_dir


def _run(bin_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, cwd=bin_dir.parent)


def test_clean_install_gives_a_working_cli(clean_install):
    top = _run(clean_install, clean_install / "medledger", "--help")
    assert top.returncode == 0, top.stderr
    assert "Usage: medledger" in top.stdout
    for group in ("keys", "consent", "record", "claim"):
        assert f"\n  {group} " in top.stdout
    keys = _run(clean_install, clean_install / "medledger", "keys", "--help")
    assert keys.returncode == 0, keys.stderr
    assert "Manage encrypted keystores" in keys.stdout
    # A real command that needs no chain: a user mistake ends in one line and a non-zero exit.
    bad = _run(clean_install, clean_install / "medledger", "--rpc", "http://127.0.0.1:1", "consent", "grant",
               "not-an-address", "-p", "treat", "-c", "labs")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_clean_install_has_no_dev_tooling(clean_install):
    probe = ("import importlib.util, json; print(json.dumps({m: importlib.util.find_spec(m) is not None "
             "for m in ('medledger', 'medledger.testing', 'brownie', 'pytest', 'hypothesis', 'solcx')}))")
    found = json.loads(_run(clean_install, clean_install / "python", "-c", probe).stdout)
    assert found == {"medledger": True, "medledger.testing": True, "brownie": False, "pytest": False,
                     "hypothesis": False, "solcx": False}
    for module in ("brownie", "pytest"):
        failed = _run(clean_install, clean_install / "python", "-c", f"import {module}")
        assert failed.returncode != 0 and "ModuleNotFoundError" in failed.stderr


def test_clean_install_ships_only_the_product(clean_install):
    site = next((clean_install.parent / "lib").glob("python3*/site-packages"))
    (record,) = site.glob("medledger-*.dist-info/RECORD")
    files = [line.split(",", 1)[0] for line in record.read_text().splitlines()]
    top = {f.split("/", 1)[0] for f in files if not f.startswith("../")}
    assert {t for t in top if not t.endswith(".dist-info")} == {"medledger"}
    assert "medledger/testing/synthetic.py" in files
    assert not any(f.startswith(("benchmarks/", "tests/", "scripts/")) or f.endswith(("bench.py", "demo.py"))
                   for f in files)

