import ast
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
