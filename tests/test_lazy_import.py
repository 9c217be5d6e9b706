import subprocess
import sys

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
