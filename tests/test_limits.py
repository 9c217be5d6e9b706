"""Inside tight limits and against children that misbehave, as cron and a
systemd unit with resource limits run the probe: a report or one line, never
a traceback; no thread or process of the probe left behind.

- Address-space limits (``ulimit -v``, ``LimitAS=``) from 64 MiB to 1 GiB:
  either exit 255 with one line on stderr, or a report whose verdicts are
  those of the same run without the limit (a limit never becomes a verdict
  about the host), with no traceback; as root and as an ordinary account.
- A DNS server that never answers pydev's debug host: the verdict within the
  deadline, and no thread or child of the probe alive after it returns,
  also after 100 refreshes of the /healthcheck backend.
- A qemu-img that starts a daemon in a session of its own: nothing of it is
  left when the command line returns.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import need, validate
from glance_harness import GLANCE_PYTHON
from releases.harness import release
from safety_support import (
    as_user,
    clean_env,
    need_root,
    script,
    wait_gone,
    world_traversable_dir,
)

HERE = Path(__file__).resolve().parent
MIB = 1 << 20
LIMITS_MIB = (64, 96, 128, 192, 256, 384, 512, 768, 1024)
FEATURES = ("--feature", "qemu-img", "--feature", "sendfile", "--feature", "dnspython-ipv6")
JSON_60_S = ("--format", "json", "--timeout", "60")


def _cli_under_limit(python: str, limit: int | None, prefix: list[str]) -> tuple[int, str, str]:
    """The command line with an address-space limit set from outside, as
    systemd's LimitAS= or a shell's ulimit -v sets it."""
    limit_argv = [shutil.which("prlimit") or "prlimit", f"--as={limit}", "--"] if limit else []
    proc = subprocess.run(
        [*prefix, *limit_argv, python, "-m", "glance_features", *FEATURES, *JSON_60_S],
        capture_output=True,
        text=True,
        timeout=180,
        cwd="/",
        stdin=subprocess.DEVNULL,
        env=clean_env(),
    )
    return proc.returncode, proc.stdout, proc.stderr


def _verdicts(stdout: str) -> dict[str, str]:
    report = validate(json.loads(stdout))
    return {name: result["status"] for name, result in report["features"].items()}


@pytest.fixture(scope="module", params=["root", "nobody"])
def account(request: pytest.FixtureRequest) -> tuple[str, list[str], dict[str, str]]:
    """Who runs it, with which interpreter, and its verdicts without a limit."""
    need(shutil.which("prlimit") is not None, "prlimit (util-linux) is not installed")
    if request.param == "root":
        python, prefix = sys.executable, []
    else:
        need_root()
        need(os.path.exists(GLANCE_PYTHON), f"no Glance virtualenv at {GLANCE_PYTHON}")
        # An interpreter the account can run: Glance's venv, glance-features in it.
        python, prefix = GLANCE_PYTHON, as_user("nobody")
    code, out, err = _cli_under_limit(python, None, prefix)
    assert code in (0, 1, 2), err
    return python, prefix, _verdicts(out)


@pytest.mark.parametrize("mib", LIMITS_MIB)
def test_an_address_space_limit_gives_the_report_or_one_line(
    mib: int, account: tuple[str, list[str], dict[str, str]]
) -> None:
    python, prefix, unlimited = account
    code, out, err = _cli_under_limit(python, mib * MIB, prefix)
    assert "Traceback" not in err, err
    assert "Exception in thread" not in err, err
    if code == 255:
        assert out == ""
        assert len(err.strip().splitlines()) == 1, err
        assert "limit" in err or "memory" in err, err
        return
    assert code in (0, 1, 2), err
    # A limit it can work within changes no verdict.
    assert _verdicts(out) == unlimited, out


def test_below_the_floor_it_says_so_in_one_line() -> None:
    need(shutil.which("prlimit") is not None, "prlimit (util-linux) is not installed")
    code, out, err = _cli_under_limit(sys.executable, 64 * MIB, [])
    assert (code, out) == (255, "")
    assert err.strip() == (
        "glance-features: error: the address-space limit (64 MiB) is below the 128 MiB "
        "the probe needs: raise ulimit -v (systemd: LimitAS=)"
    )


def test_at_a_limit_it_can_work_within_it_reports() -> None:
    need(shutil.which("prlimit") is not None, "prlimit (util-linux) is not installed")
    # 256 MiB: the default thread stacks alone (8 MiB each, a dozen threads
    # and their children's readers) ran out of it before stacks were sized.
    code, out, err = _cli_under_limit(sys.executable, 256 * MIB, [])
    assert code in (0, 1, 2), err
    assert err == ""
    assert set(_verdicts(out)) == {"qemu-img", "sendfile", "dnspython-ipv6"}


def _in_silent_dns(tmp_path: Path, argv: list[str]) -> list[str]:
    """Private mount and network namespaces whose resolver is 127.0.0.1,
    where tests/limits_resolver.py binds a server that never answers (any
    account may bind port 53 there: the namespace's own setting)."""
    need_root()
    need(shutil.which("unshare") is not None, "unshare (util-linux) is not installed")
    tmp_path.chmod(0o755)
    resolv, hosts = tmp_path / "resolv.conf", tmp_path / "hosts"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:30 attempts:5\n")
    hosts.write_text("127.0.0.1 localhost\n::1 localhost\n")
    setup = (
        "ip link set lo up\n"
        "echo 0 > /proc/sys/net/ipv4/ip_unprivileged_port_start\n"
        f"mount --bind {resolv} /etc/resolv.conf\n"
        f"mount --bind {hosts} /etc/hosts\n"
        'exec "$@"\n'
    )
    return ["unshare", "-m", "-n", "--propagation", "private", "sh", "-ec", setup, "sh", *argv]


@pytest.mark.parametrize(("who", "refreshes"), [("root", 1), ("root", 100), ("nobody", 100)])
def test_a_resolver_that_never_answers_leaves_no_thread_or_child(
    tmp_path: Path, who: str, refreshes: int
) -> None:
    python, prefix = sys.executable, []
    if who == "nobody":
        # An interpreter the account can run, with pydevd (as build.sh installs it).
        venv = release("32").venv
        need((venv / "bin/python").exists(), f"no {venv} (tests/releases/build.sh 32)")
        python, prefix = str(venv / "bin/python"), as_user("nobody")
    script = [*prefix, python, str(HERE / "limits_resolver.py"), str(refreshes)]
    proc = subprocess.run(
        _in_silent_dns(tmp_path, script),
        capture_output=True,
        text=True,
        timeout=60 + refreshes * 5,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    found: dict[str, Any] = json.loads(proc.stdout)
    assert found["status"] == "unavailable", found
    assert "cannot resolve debug host 'debugger.glance-features.test'" in found["reason"]
    assert "did not finish within" in found["reason"], found["reason"]
    assert found["refreshes"] == refreshes
    assert found["threads"] == []
    assert found["children"] == []


@pytest.mark.parametrize("who", ["root", "nobody"])
def test_a_daemon_of_qemu_img_is_ended_with_the_command_line(who: str) -> None:
    with world_traversable_dir() as public:
        _daemon_case(who, public / "bin")


def _daemon_case(who: str, bin_dir: Path) -> None:
    marker = f"gf-daemon-{secrets.token_hex(4)}"
    # Every run of it leaves a daemon: a new session, its parent gone.
    script(
        bin_dir / "qemu-img",
        f"setsid -f sh -c 'sleep 300; : {marker}' >/dev/null 2>&1 </dev/null\n"
        'case "$1" in --version) echo "qemu-img version 8.2.2";; '
        '*) echo "Supported formats: qcow2 raw";; esac\n',
    )
    # As root, checked as root: the service account's PATH would not hold bin_dir.
    python, prefix, user = sys.executable, [], ["--user", "root"]
    if who == "nobody":
        need_root()
        need(os.path.exists(GLANCE_PYTHON), f"no Glance virtualenv at {GLANCE_PYTHON}")
        python, prefix, user = GLANCE_PYTHON, as_user("nobody"), []
    run = subprocess.run(
        [
            *prefix,
            python,
            "-I",
            "-m",
            "glance_features",
            "--feature",
            "qemu-img",
            *user,
            *JSON_60_S,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env=clean_env(PATH=f"{bin_dir}:/usr/bin:/bin"),
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode in (0, 1, 2), run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    result = json.loads(run.stdout)["features"]["qemu-img"]
    assert result["details"]["path"] == str(bin_dir / "qemu-img"), result
    assert wait_gone(marker) == []
