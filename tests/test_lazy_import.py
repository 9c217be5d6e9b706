import ast
import json
import subprocess
import sys
from pathlib import Path

HEAVY = [
    "psutil",
    "distro",
    "importlib_metadata",
    "importlib.metadata",
    "packaging",
    "jsonschema",
    "subprocess",
    "typing",
    "json",
    "dataclasses",
    "threading",
    "glance_features.model",
    "glance_features.runner",
]


def test_import_loads_nothing_heavy() -> None:
    code = (
        "import sys, glance_features\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "print(sorted(m for m in sys.modules if m.startswith('glance_features')))\n"
    )
    # -S: no site-packages processing beyond what the interpreter needs, so the
    # list reflects this package only; PYTHONPATH still finds it.
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "[]"
    assert out[1] == "['glance_features', 'glance_features._version']"


def test_names_resolve_on_first_use() -> None:
    import glance_features

    assert glance_features.Status.AVAILABLE.value == "available"
    assert set(glance_features.__all__) <= set(dir(glance_features)) | {"__version__"}
    for name in glance_features.__all__:
        assert getattr(glance_features, name) is not None


def test_reading_a_configuration_loads_no_detector(tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    conf.write_text("[DEFAULT]\nimage_cache_driver = xattr\n")
    code = (
        "import sys\n"
        "from glance_features.settings import Settings\n"
        f"s = Settings.from_config_files([{str(conf)!r}])\n"
        "assert s.image_cache_driver == 'xattr' and Settings(workers=2).workers == 2\n"
        "print(sorted(m for m in sys.modules if m.startswith('glance_features.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(ast.literal_eval(out))
    assert loaded, out
    # Settings reads options as data: the detectors, the registry and the
    # command line stay unloaded (before, a keyword loaded all twelve detectors).
    above = ("glance_features.detector", "glance_features.registry", "glance_features.cli")
    assert not {m for m in loaded if m.startswith(above)}, loaded


OLDEST_PYTHON = "3.10"  # pyproject's requires-python; Glance 28's Ubuntu 22.04 runs it


def _oldest_python() -> str | None:
    """A CPython of the oldest version this package supports: on PATH, or one
    pyenv built (the image's ~/.pyenv)."""
    import glob
    import os
    import shutil

    name = f"python{OLDEST_PYTHON}"
    candidates = [shutil.which(name) or ""]
    built = os.path.expanduser(f"~/.pyenv/versions/{OLDEST_PYTHON}.*/bin/{name}")
    candidates += sorted(glob.glob(built))
    for python in filter(None, candidates):
        if subprocess.run([python, "-c", "pass"], capture_output=True, timeout=30).returncode == 0:
            return python
    return None


def test_every_module_imports_on_the_oldest_python() -> None:
    """A name typing gained later (NotRequired is 3.11's) or newer syntax fails
    here, not inside a Glance on Ubuntu 22.04. Only a missing third-party
    distribution may stop a module: that interpreter has none installed."""
    from conftest import need

    python = _oldest_python()
    need(python is not None, f"needs a Python {OLDEST_PYTHON} (pyenv install {OLDEST_PYTHON})")
    assert python is not None
    code = (
        "import importlib, json, pkgutil, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "import glance_features\n"
        "failed = {}\n"
        "for m in pkgutil.walk_packages(glance_features.__path__, 'glance_features.'):\n"
        "    if m.name.endswith('__main__'):\n"
        "        continue\n"
        "    try:\n"
        "        importlib.import_module(m.name)\n"
        "    except ModuleNotFoundError as e:\n"
        "        ours = (e.name or '').startswith('glance_features')\n"
        "        if ours or e.name in sys.stdlib_module_names:\n"
        "            failed[m.name] = repr(e)\n"
        "    except ImportError as e:\n"
        "        if 'library' not in str(e):  # testing.fixture: 'needs the fixtures library'\n"
        "            failed[m.name] = repr(e)\n"
        "    except Exception as e:\n"
        "        failed[m.name] = repr(e)\n"
        "print(json.dumps(failed))\n"
    )
    done = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {}
