"""One way to run a check with the service's eyes (glance_features.runas):
in this process, in a fork as the service account, or in the service's
interpreter with the request on stdin; never source text, never a payload on
a command line."""

from __future__ import annotations

import ast
import dataclasses
import errno
import json
import os
import pwd
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

import psutil
import pytest
from conftest import context, need

import glance_features
from glance_features import checks, runas
from glance_features.detector import ProbeContext

PACKAGE = Path(glance_features.__file__).parent
SERVICE_USER = "glance"


def failure_of(found: checks.PathFound | checks.DirFound) -> checks.Failure:
    """The failure a check reported; a check that did not fail fails the test."""
    failure = found["failure"]
    assert failure is not None, found
    return failure


def has_service_account() -> bool:
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return False
    return os.geteuid() == 0


def as_service(ctx: ProbeContext) -> ProbeContext:
    import dataclasses

    return dataclasses.replace(ctx, user=SERVICE_USER)


def is_program(text: str) -> bool:
    """A string that parses as Python and imports or defines something."""
    try:
        body = ast.parse(text).body
    except (SyntaxError, ValueError):
        return False
    kinds = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
    return any(isinstance(statement, kinds) for statement in body)


def test_a_program_in_a_string_is_recognised() -> None:
    assert is_program("import json, sys\nprint(json.dumps(sys.path))\n")
    assert not is_program("Runtime probe.\n\n>>> import glance_features\n")


def test_the_package_holds_no_code_in_strings() -> None:
    """No exec()/eval()/compile() of source text, and no string that is a
    Python program (what a `python -c` child would run)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("exec", "eval", "compile"), f"{path}:{node.lineno}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not is_program(node.value), f"{path}:{node.lineno}: a program in a string"


def test_checks_runs_alone_in_an_isolated_interpreter(tmp_path: Path) -> None:
    """checks.py needs nothing of the package: the service's interpreter
    may not have glance_features installed."""
    request = {"call": "files", "args": [[str(tmp_path)], [str(tmp_path)], []], "path": None}
    proc = subprocess.run(
        [sys.executable, "-I", "-S", str(PACKAGE / "checks.py")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(proc.stdout)
    assert reply["value"]["write"][str(tmp_path)]["failure"] is None
    # A directory is never read as a file.
    assert reply["value"]["read"][str(tmp_path)]["failure"]["errno"] == "EISDIR"


def test_a_failing_check_is_an_answer_not_a_crash() -> None:
    request: dict[str, object] = {"call": "no-such-check", "args": [], "path": None}
    proc = subprocess.run(
        [sys.executable, "-I", str(PACKAGE / "checks.py")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["error"].startswith("KeyError")


def test_what_imports_print_never_becomes_the_answer(tmp_path: Path) -> None:
    noisy = tmp_path / "noisy_module.py"
    noisy.write_text('print(\'{"value": "forged"}\')\n')
    path = [str(tmp_path), *(p for p in sys.path if os.path.isabs(p))]
    request = {"call": "imports", "args": [["noisy_module"], False], "path": path}
    proc = subprocess.run(
        [sys.executable, "-I", str(PACKAGE / "checks.py")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=30,
    )
    reply = json.loads(proc.stdout)
    assert reply["value"]["modules"]["noisy_module"]["failure"] is None
    assert "forged" in proc.stderr


def test_only_checks_of_the_checks_module_run() -> None:
    with pytest.raises(ValueError):
        runas.run_at(context(), runas.Where.INTERPRETER, os.getcwd)


def test_every_check_declares_where_it_runs() -> None:
    # Declared next to each definition; runas.run never takes a place.
    assert set(checks.WHERE) == set(checks.CALLS) and checks.CALLS
    places = {name: runas.where(check) for name, check in checks.CALLS.items()}
    assert places["xattr_cache"] is places["files"] is runas.Where.ACCOUNT
    assert places["eventlet_resolution"] is runas.Where.NEW_INTERPRETER
    assert places["imports"] is runas.Where.INTERPRETER
    with pytest.raises(ValueError):
        runas.run(context(), os.getcwd)


def test_the_three_ways_agree(tmp_path: Path) -> None:
    """The same check gives the same answer in this process, in a fork as
    another account, and in the service's interpreter."""
    need(has_service_account(), "needs root and a glance account (useradd --system glance)")
    mine = tmp_path / "root-only"
    mine.mkdir(mode=0o700)
    shared = Path(tempfile.mkdtemp(prefix="glance-features-shared-"))
    try:
        shared.chmod(0o777)
        args = ([str(mine / "x"), "/etc/hostname"], [str(mine), str(shared)], ["/bin/sh"])
        here = runas.run_at(context(), runas.Where.ACCOUNT, checks.files, *args)
        forked = runas.run_at(as_service(context()), runas.Where.ACCOUNT, checks.files, *args)
        child = runas.run_at(context(), runas.Where.NEW_INTERPRETER, checks.files, *args)
        assert here["uid"] == child["uid"] == 0
        assert forked["uid"] == pwd.getpwnam(SERVICE_USER).pw_uid
        assert here["write"][str(mine)]["failure"] is None
        denied = failure_of(forked["write"][str(mine)])
        # Denied by the access check, before any file is tried.
        assert (denied["step"], denied["errno"]) == ("access", "EACCES")
        assert failure_of(forked["read"][str(mine / "x")])["errno"] == "EACCES"
        assert failure_of(here["read"][str(mine / "x")]) == {
            "step": "open",
            "errno": "ENOENT",
            "error": os.strerror(errno.ENOENT),
        }
        for found in (here, forked, child):
            assert found["write"][str(shared)]["failure"] is None
            assert found["exec"]["/bin/sh"] is True

        def steady(found: checks.FilesFound) -> object:
            # Free space moves while the checks run; every other fact must agree.
            write = {
                p: {k: v for k, v in d.items() if not k.startswith("free_")}
                for p, d in found["write"].items()
            }
            return found["read"], write, found["exec"]

        assert steady(here) == steady(child)
        assert os.listdir(shared) == []  # the probe files are gone
    finally:
        os.rmdir(shared)


def test_devices_and_fifos_are_never_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    found = checks.files([str(fifo), "/dev/zero"], [], [])  # opening the FIFO would block
    assert failure_of(found["read"][str(fifo)])["errno"] == "EINVAL"
    assert failure_of(found["read"]["/dev/zero"])["errno"] == "EINVAL"


def test_addresses_answer_each_address_or_the_failure() -> None:
    """An address needs no resolver; a name the IDNA codec refuses fails
    before any lookup, with no errno (none came from the OS)."""
    import socket

    assert checks.addresses("127.0.0.1", 80) == {
        "infos": [
            {
                "family": socket.AF_INET,
                "type": socket.SOCK_STREAM,
                "proto": socket.IPPROTO_TCP,
                "canonname": "",
                "sockaddr": ["127.0.0.1", 80],
            }
        ],
        "failure": None,
    }
    refused = checks.addresses("x" * 64 + ".example", 80)
    assert refused["infos"] == []
    assert refused["failure"] is not None
    assert (refused["failure"]["step"], refused["failure"]["errno"]) == ("getaddrinfo", None)
    assert "idna" in refused["failure"]["error"]


def test_an_interpreter_that_cannot_run_is_a_clear_failure(tmp_path: Path) -> None:
    import dataclasses

    ctx = dataclasses.replace(context(), python=str(tmp_path / "python3"))
    with pytest.raises(runas.CheckFailed, match="cannot run"):
        runas.run_at(ctx, runas.Where.INTERPRETER, checks.imports, ["os"], False)


def test_a_hanging_check_meets_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hangs.py").write_text("import time\ntime.sleep(600)\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the child gets this process's path
    start = time.monotonic()
    with pytest.raises(runas.CheckFailed, match="did not finish"):
        runas.run_at(
            context(timeout=1.5), runas.Where.NEW_INTERPRETER, checks.imports, ["hangs"], False
        )
    assert time.monotonic() - start < 10


def test_the_service_interpreter_is_asked_not_this_one(tmp_path: Path) -> None:
    """Another interpreter answers with its own import path and version."""
    import dataclasses

    python = "/usr/bin/python3"
    need(os.access(python, os.X_OK), "needs the distribution's /usr/bin/python3")
    ctx = dataclasses.replace(context(), python=python)
    found = runas.run_at(ctx, runas.Where.INTERPRETER, checks.imports, ["glance_features"], False)
    assert found["python"]["executable"] == python
    # This package is not installed in the distribution's interpreter.
    assert found["modules"]["glance_features"]["failure"] == {
        "step": checks.IMPORT,
        "errno": None,
        "error": "ModuleNotFoundError: No module named 'glance_features'",
    }


def test_the_service_interpreter_runs_as_the_service_account(tmp_path: Path) -> None:
    """Its site-packages may be the account's to write (.pth files run at
    start-up): its children never run as root, and they are handed checks.py
    as a descriptor, so the account needs no access to this package."""
    need(has_service_account(), "needs root and a glance account (useradd --system glance)")
    import dataclasses
    import shutil

    shared = Path(tempfile.mkdtemp(prefix="glance-features-runas-"))
    try:
        shared.chmod(0o755)
        venv = shared / "venv"
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
        out = shared / "out"
        out.mkdir(mode=0o777)
        out.chmod(0o1777)
        (site,) = venv.glob("lib/python3*/site-packages")
        record = f"open({str(out)!r} + '/uid-%d' % os.getpid(), 'w').write(str(os.getuid()))"
        (site / "zz_who.pth").write_text(f"import os; {record}\n")
        shutil.chown(venv, SERVICE_USER, SERVICE_USER)
        ctx = dataclasses.replace(as_service(context()), python=str(venv / "bin" / "python3"))
        found = runas.run_at(ctx, runas.Where.INTERPRETER, checks.imports, ["json"], False)
        assert found["modules"]["json"]["failure"] is None
        uids = {p.read_text() for p in out.iterdir()}
        assert uids == {str(pwd.getpwnam(SERVICE_USER).pw_uid)}
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_a_virtualenv_is_not_its_base_interpreter(tmp_path: Path) -> None:
    """A venv's python links to /usr/bin/python3, but its site-packages are
    its own: the distribution's Glance is not found in it."""
    need(os.access("/usr/bin/python3", os.X_OK), "needs the distribution's /usr/bin/python3")
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); from glance_features import runas; "
        "print(runas.is_this_interpreter('/usr/bin/python3'), "
        "runas.is_this_interpreter(sys.executable))"
    )
    proc = subprocess.run(
        [str(venv / "bin" / "python3"), "-c", probe, str(PACKAGE.parent)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0 and "No module named" in proc.stderr:
        need(False, f"the runtime dependencies do not import there: {proc.stderr[-200:]}")
    assert proc.stdout.split() == ["False", "True"], proc.stderr


def _child_processes() -> list[psutil.Process]:
    """This process's live children (a zombie another test left unreaped is not)."""
    return [
        p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE
    ]


def _children_of_me() -> list[str]:
    """The command lines of this process's live children; a zombie another
    test left unreaped has none, and is no child of a pool."""
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            found.append(" ".join(child.cmdline()))
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return found


def test_one_child_answers_every_check_of_a_probe(tmp_path: Path) -> None:
    """A dozen checks in another interpreter cost one interpreter start: the
    same child answers each, and the probe's end ends it."""
    python = "/usr/bin/python3"
    need(os.path.exists(python), "needs /usr/bin/python3 (another interpreter than this one)")
    pool = runas.Interpreters()
    ctx = context()
    ctx = dataclasses.replace(ctx, python=python, interpreters=pool)
    try:
        pids = set()
        for _ in range(12):
            found = runas.run_at(ctx, runas.Where.INTERPRETER, checks.interpreter, ["pip"])
            assert found["python"]["executable"] == python
            (child,) = [c for c in _children_of_me() if "/dev/fd/" in c]
            pids.add(child)
        assert len(pids) == 1
        # Another question, another answer, from the same child.
        found_imports = runas.run_at(ctx, runas.Where.INTERPRETER, checks.imports, ["json"], True)
        assert found_imports["modules"]["json"]["failure"] is None
    finally:
        pool.close()
    assert [c for c in _children_of_me() if "/dev/fd/" in c] == []
    with pytest.raises(runas.CheckFailed, match="the probe is over"):
        runas.run_at(ctx, runas.Where.INTERPRETER, checks.interpreter, ["pip"])


def _venv_that_hangs_on_import(tmp_path: Path) -> str:
    """The python of a venv whose module ``hangs_on_import`` never finishes importing."""
    need(os.path.exists("/usr/bin/python3"), "needs /usr/bin/python3")
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = venv.glob("lib/python3*/site-packages")
    (site / "hangs_on_import.py").write_text("import time\ntime.sleep(600)\n")
    return str(venv / "bin" / "python")


def test_a_check_that_overruns_ends_its_child_and_the_next_starts_another(
    tmp_path: Path,
) -> None:
    python = _venv_that_hangs_on_import(tmp_path)
    pool = runas.Interpreters()
    ctx = dataclasses.replace(context(timeout=30.0), python=python, interpreters=pool)
    try:
        with pytest.raises(runas.CheckFailed, match="did not finish within 1 s"):
            pool.call(python, None, checks.imports, (["hangs_on_import"], False), 1.0)
        assert [c for c in _children_of_me() if "/dev/fd/" in c] == []
        found = runas.run_at(ctx, runas.Where.INTERPRETER, checks.interpreter, ["pip"])
        assert found["python"]["executable"] == python
        assert len([c for c in _children_of_me() if "/dev/fd/" in c]) == 1
    finally:
        pool.close()
    assert [c for c in _children_of_me() if "/dev/fd/" in c] == []


def test_a_slow_check_never_holds_up_another(tmp_path: Path) -> None:
    """A check stuck in its import holds up no other: the same child answers
    them meanwhile, and the probe's end ends it at once."""
    import threading

    python = _venv_that_hangs_on_import(tmp_path)
    pool = runas.Interpreters()
    stuck: list[BaseException] = []

    def hang() -> None:
        try:
            pool.call(python, None, checks.imports, (["hangs_on_import"], False), 300.0)
        except runas.CheckFailed as exc:
            stuck.append(exc)

    worker = threading.Thread(target=hang, daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not [c for c in _children_of_me() if "/dev/fd/" in c]:
            assert time.monotonic() < deadline, "the stuck check's child never started"
            time.sleep(0.05)
        for _ in range(3):  # each answered while the first is stuck, by its child
            found = pool.call(python, None, checks.interpreter, (["pip"],), 10.0)
            assert found["python"]["executable"] == python
            assert len([c for c in _children_of_me() if "/dev/fd/" in c]) == 1
    finally:
        pool.close()
    worker.join(30)
    assert not worker.is_alive()
    assert [str(e) for e in stuck] == [f"the imports check in {python} ended without an answer"]
    assert [c for c in _children_of_me() if "/dev/fd/" in c] == []


def test_a_check_that_crashes_the_shared_child_fails_alone(tmp_path: Path) -> None:
    """A check whose import kills the child ends the calls in flight there
    too: each of those is asked again in a child of its own, where only the
    crashing one fails."""
    import threading

    python = _venv_that_hangs_on_import(tmp_path)
    (site,) = Path(python).parent.parent.glob("lib/python3*/site-packages")
    (site / "slow_import.py").write_text("import time\ntime.sleep(1)\n")
    (site / "crashes_on_import.py").write_text(
        "import os, signal, time\ntime.sleep(0.3)\nos.kill(os.getpid(), signal.SIGKILL)\n"
    )
    pool = runas.Interpreters()
    answers: dict[str, object] = {}

    def ask(module: str) -> None:
        try:
            answers[module] = pool.call(python, None, checks.imports, ([module], False), 30.0)
        except runas.CheckFailed as exc:
            answers[module] = exc

    modules = ("slow_import", "crashes_on_import")
    workers = [threading.Thread(target=ask, args=(module,)) for module in modules]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
    finally:
        pool.close()
    slow = answers["slow_import"]
    assert isinstance(slow, dict), slow
    assert str(slow["modules"]["slow_import"]["file"]).endswith("slow_import.py")
    crashed = answers["crashes_on_import"]
    assert isinstance(crashed, runas.CheckFailed)
    assert str(crashed).endswith("was killed by SIGKILL"), crashed
    assert [c for c in _children_of_me() if "/dev/fd/" in c] == []


def test_a_child_that_died_between_checks_is_replaced() -> None:
    """Killed while no check waited on it (an OOM kill): the next check is
    answered, and the pool starts one new shared child rather than a child
    for every check from then on."""
    import signal

    python = "/usr/bin/python3"
    need(os.path.exists(python), "needs /usr/bin/python3 (another interpreter than this one)")
    pool = runas.Interpreters()
    try:
        pool.call(python, None, checks.interpreter, (["pip"],), 30.0)
        (first,) = [p for p in _child_processes() if "/dev/fd/" in " ".join(p.cmdline())]
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        for _ in range(3):
            found = pool.call(python, None, checks.interpreter, (["pip"],), 30.0)
            assert found["python"]["executable"] == python
        (live,) = [p for p in _child_processes() if "/dev/fd/" in " ".join(p.cmdline())]
        assert live.pid != first.pid
    finally:
        pool.close()
    assert [c for c in _children_of_me() if "/dev/fd/" in c] == []


def test_a_warmed_child_is_started_before_any_check_and_answers_them() -> None:
    """warm() starts the interpreter while the caller does other work; the
    checks then go to that child, not to one more."""
    python = "/usr/bin/python3"
    need(os.path.exists(python), "needs /usr/bin/python3 (another interpreter than this one)")
    pool = runas.Interpreters()
    try:
        pool.warm(python, None)
        (warmed,) = [p for p in _child_processes() if "/dev/fd/" in " ".join(p.cmdline())]
        pool.warm(python, None)  # warm again: the same child
        for _ in range(3):
            found = pool.call(python, None, checks.interpreter, (["pip"],), 30.0)
            assert found["python"]["executable"] == python
        (live,) = [p for p in _child_processes() if "/dev/fd/" in " ".join(p.cmdline())]
        assert live.pid == warmed.pid
    finally:
        pool.close()
    assert [c for c in _children_of_me() if "/dev/fd/" in c] == []


def test_warming_an_interpreter_that_cannot_run_leaves_the_failure_to_the_check(
    tmp_path: Path,
) -> None:
    missing = str(tmp_path / "no-python")
    pool = runas.Interpreters()
    try:
        pool.warm(missing, None)
        with pytest.raises(runas.CheckFailed, match="no-python"):
            pool.call(missing, None, checks.interpreter, (["pip"],), 10.0)
    finally:
        pool.close()
    pool.warm(missing, None)  # after close: nothing starts, nothing raises
    assert [c for c in _children_of_me() if "/dev/fd/" in c] == []


def test_a_check_that_patches_its_interpreter_never_runs_in_a_shared_child() -> None:
    """eventlet_resolution imports and patches eventlet: in a child shared
    with other checks it would change what they see (and a failed import
    there broke the next try's monkey_patch)."""
    need(os.path.exists("/usr/bin/python3"), "needs /usr/bin/python3")

    class NoSharing(runas.Interpreters):
        def call(self, *args: object, **kwargs: object) -> NoReturn:
            raise AssertionError("a new-interpreter check went to a shared child")

    ctx = dataclasses.replace(context(), python="/usr/bin/python3", interpreters=NoSharing())
    found = runas.run_at(ctx, runas.Where.NEW_INTERPRETER, checks.interpreter, ["pip"])
    assert found["python"]["executable"] == "/usr/bin/python3"
    with pytest.raises(AssertionError, match="went to a shared child"):
        runas.run_at(ctx, runas.Where.INTERPRETER, checks.interpreter, ["pip"])


def _python38() -> str | None:
    """A CPython 3.8: on PATH, or one pyenv built (the image's ~/.pyenv)."""
    import glob
    import shutil

    found = shutil.which("python3.8")
    candidates = [found] if found else []
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8")))
    # pyenv's shim on PATH may name a version pyenv has not built: run each.
    for python in candidates:
        probe = subprocess.run([python, "-c", "pass"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return python
    return None


def test_checks_run_on_the_oldest_python_glance_supports() -> None:
    """checks.py runs in the service's interpreter, which for Glance 29 may
    be Python 3.8: it must import and answer there, one-shot and serving."""
    python = _python38()
    need(python is not None, "needs a Python 3.8 (pyenv install 3.8)")
    assert python is not None
    one = {"call": "imports", "args": [["json"], False]}
    served = [{"serve": True}, one, {"call": "interpreter", "args": [["pip"]]}]
    for lines in ([one], served):
        proc = subprocess.run(
            [python, "-I", checks.__file__],
            input="".join(json.dumps(line) + "\n" for line in lines),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        replies = [json.loads(line) for line in proc.stdout.splitlines()]
        assert len(replies) == len(lines) - (1 if lines is served else 0), proc.stdout
        assert replies[0]["value"]["modules"]["json"]["failure"] is None, replies
        assert all("value" in reply for reply in replies), replies
