"""What the WSGI guard costs where it binds: from uWSGI's start to the first
answered request, ``glance_features.wsgi:application`` against Glance's own
``glance.wsgi.api:application`` under the same uWSGI, one worker, the two
interleaved run by run after a warm-up pair.

    GLANCE_VENV=.venv-glance python benchmarks/guard.py [--runs 15]

Each side has its own config directory and SQLite database, made once;
Glance runs as the glance account with the xattr cache and the file store
enabled. The guarded side is deployed as docs/deployment.rst sets it up,
with the health check's glance_features backend; the plain side is Glance
without glance-features at all (its health check only disable_by_file), so
the ratio is what adopting it costs. Prints both sides' medians with their
min..max, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from functional.glance_deploy import GlanceConfig, GlanceDeployment, glance_venv

GUARDED = "glance_features.wsgi:application"
PLAIN = "glance.wsgi.api:application"


def deployment(
    workdir: Path, application: str, venv: Path, healthcheck: tuple[str, ...]
) -> GlanceDeployment:
    cache = workdir / "cache"
    cache.mkdir(parents=True)
    config = GlanceConfig(
        application=application,
        processes=1,
        threads=1,
        lazy_apps=False,
        run_as="glance",
        service_path="/usr/local/bin:/usr/bin:/bin",
        image_import_plugins=["image_conversion"],
        image_cache_driver="xattr",
        image_cache_dir=cache,
        healthcheck_backends=healthcheck,
        debug=False,
    )
    g = GlanceDeployment(workdir, config, venv=venv)
    g.write_config()
    g.db_sync()
    shutil.chown(cache, "glance", "glance")
    return g


def start_to_ready(g: GlanceDeployment) -> float:
    g.start()
    try:
        return g.timings["start_to_ready"]
    finally:
        g.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    venv = glance_venv()
    base = Path(tempfile.mkdtemp(prefix="gf-guard-bench-"))
    base.chmod(0o755)
    try:
        guarded = deployment(
            base / "guarded", GUARDED, venv, ("disable_by_file", "glance_features")
        )
        plain = deployment(base / "plain", PLAIN, venv, ("disable_by_file",))
        start_to_ready(guarded), start_to_ready(plain)  # warm-up: page cache, pyc
        a: list[float] = []
        b: list[float] = []
        for _ in range(args.runs):
            a.append(start_to_ready(guarded))
            b.append(start_to_ready(plain))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    ratio = statistics.median(a) / statistics.median(b)
    print(f"venv: {venv}")
    for name, runs in (("guarded", a), ("plain", b)):
        print(f"{name}: median {statistics.median(runs):.3f} s ({min(runs):.3f}..{max(runs):.3f})")
    print(f"guarded / plain, start to first answer, {args.runs} pairs: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
