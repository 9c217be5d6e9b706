"""What the WSGI guard costs on Debian's packaged Glance, switched to uWSGI
the Debian way: from ``/etc/init.d/glance-api start`` to the first answered
request, ``module = glance_features.wsgi:application`` (the probe installed as
the README says, its site-packages on uWSGI's ``pythonpath``) against the
package's own ``wsgi-file = /usr/bin/glance-wsgi-api``, one worker each, the
two interleaved run by run after a warm-up pair.

    python benchmarks/debian_guard.py [--suite trixie] [--runs 15]

Needs the suite's cached root (``bash tests/debian/chroot.sh SUITE``) and
root. Prints both sides' medians with their min..max, and the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from debian import chroot  # noqa: E402
from debian_cli import install_this_checkout  # noqa: E402

INI = "/etc/glance/glance-api-uwsgi.ini"
GUARD = "glance_features.wsgi:application"


def variants(ini: str, site: str) -> dict[str, str]:
    """The package's ini with one worker: as shipped, and guarded."""
    one = re.sub(r"^processes = \d+$", "processes = 1", ini, flags=re.M)
    guarded = re.sub(
        r"^wsgi-file = /usr/bin/glance-wsgi-api$",
        f"pythonpath = {site}\nmodule = {GUARD}\nneed-app = true",
        one,
        flags=re.M,
    )
    if guarded == one:
        raise SystemExit(f"{INI} has no 'wsgi-file = /usr/bin/glance-wsgi-api' line")
    return {"plain": one, "guarded": guarded}


def start_to_answer(glance: chroot.Glance, ini: str) -> float:
    """Seconds from the init script's start to the first answered request."""
    root = glance.root
    root.write(INI, ini)
    start = time.perf_counter()
    started = root.run([chroot.INIT_SCRIPT, "start"], env=chroot.SERVICE_ENV, timeout=60)
    if started.returncode != 0:
        raise SystemExit(f"{chroot.INIT_SCRIPT} start: {started.stderr}")
    deadline = start + 120
    while time.perf_counter() < deadline:
        with contextlib.suppress(OSError):
            if glance.get("/versions", timeout=2)[0] in (200, 300):
                elapsed = time.perf_counter() - start
                stop(root)
                return elapsed
        time.sleep(0.02)
    raise SystemExit(f"no answer within 120 s:\n{glance.log()[-3000:]}")


def stop(root: chroot.Root) -> None:
    for pid in root.processes():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    while root.processes():
        time.sleep(0.02)
    root.run(["rm", "-f", chroot.PIDFILE])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="trixie", choices=sorted(chroot.SUITES))
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    install_this_checkout(args.suite)
    with chroot.booted(args.suite) as root:
        version = chroot.package_version(root)
        site = root.run(
            [
                f"{chroot.VENV}/bin/python",
                "-c",
                "import sysconfig; print(sysconfig.get_path('purelib'))",
            ]
        ).stdout.strip()
        inis = variants(root.read(INI), site)
        # Configured and its database synced once; every run after starts anew.
        with chroot.glance_api(root, "uwsgi", database=True) as glance:
            pass
        stop(root)
        times: dict[str, list[float]] = {"guarded": [], "plain": []}
        for name in times:  # warm-up: page cache, pyc files
            start_to_answer(glance, inis[name])
        for _ in range(args.runs):
            for name, runs in times.items():
                runs.append(start_to_answer(glance, inis[name]))
    print(f"Debian {chroot.SUITES[args.suite]} ({args.suite}), glance-api {version}, uWSGI")
    for name, runs in times.items():
        print(f"{name}: median {statistics.median(runs):.3f} s ({min(runs):.3f}..{max(runs):.3f})")
    ratio = statistics.median(times["guarded"]) / statistics.median(times["plain"])
    print(
        f"guarded / plain, start to first answer, {args.runs} pairs: {ratio:.3f} (target <= 1.03)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
