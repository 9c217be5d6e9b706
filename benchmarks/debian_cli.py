"""The command line beside Debian's packaged Glance, as an operator there runs
it: ``/opt/glance-features/bin/glance-features`` (a venv over /usr/bin/python3,
as the README says) against ``glance-status upgrade check`` of the same
package, in the suite's root file system (tests/debian/chroot.py), the two
interleaved run by run after a warm-up pair; and against ``bindep -b`` on
this checkout's bindep.txt.

    python benchmarks/debian_cli.py [--suite bookworm] [--runs 15]

Needs the suite's cached root (``bash tests/debian/chroot.sh SUITE``) and
root. Prints both sides' medians with their min..max, and the ratios.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from debian import chroot  # noqa: E402


def install_this_checkout(suite: str) -> None:
    """This checkout, as a wheel, installed in the suite's tree as the README says."""
    with tempfile.TemporaryDirectory(prefix="gf-bench-wheel-") as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp, str(ROOT)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (wheel,) = Path(tmp).glob("glance_features-*.whl")
        chroot.install_probe(suite, wheel)


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def side_by_side(
    a: Callable[[], object], b: Callable[[], object], runs: int
) -> tuple[list[float], list[float]]:
    a(), b()  # warm-up: page cache, pyc files
    sa, sb = [], []
    for _ in range(runs):
        sa.append(timed(a))
        sb.append(timed(b))
    return sa, sb


def line(figure: str, sa: list[float], sb: list[float], limit: float) -> None:
    ratio = statistics.median(sa) / statistics.median(sb)
    print(
        f"{figure}: {ratio:.3f} (target <= {limit}); "
        f"{statistics.median(sa):.3f} s ({min(sa):.3f}..{max(sa):.3f}) against "
        f"{statistics.median(sb):.3f} s ({min(sb):.3f}..{max(sb):.3f}), {len(sa)} pairs"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="bookworm", choices=sorted(chroot.SUITES))
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    install_this_checkout(args.suite)
    bindep = shutil.which("bindep") or str(Path(sys.executable).parent / "bindep")
    with chroot.booted(args.suite) as root:
        version = chroot.package_version(root)

        def ours() -> None:
            root.run([chroot.PROBE, "--format", "json"], check=False)

        def status() -> None:
            root.run(["/usr/bin/glance-status", "upgrade", "check"])

        def bindep_b() -> None:
            subprocess.run(
                [bindep, "-b", "-f", str(ROOT / "bindep.txt"), "test"],
                capture_output=True,
                check=False,
            )

        print(f"Debian {chroot.SUITES[args.suite]} ({args.suite}), glance-api {version}")
        line(
            "glance-features --format json / glance-status",
            *side_by_side(ours, status, args.runs),
            0.25,
        )
        line(
            "glance-features --format json / bindep -b",
            *side_by_side(ours, bindep_b, args.runs),
            0.25,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
