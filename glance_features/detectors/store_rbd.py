"""store-rbd: glance_store's rbd driver can import rados and rbd and read its Ceph files.

Mirrors ``glance_store._drivers.rbd.Store.configure_add()`` (5.7): without the
``rados`` and ``rbd`` modules glance_store disables adding images. Those
modules come from the distribution (Debian's ``python3-rados`` and
``python3-rbd``, into ``/usr/lib/python3/dist-packages``), never from PyPI, so
a virtualenv without system site packages cannot import them even when they
are installed: the report says exactly that. In multi-store mode
``configure_add`` also connects to the cluster (``_set_url_prefix``), with
``rbd_store_ceph_conf`` and the keyring it names, as the service user; the
legacy store connects on each upload. Either way the probe connects to the
monitors of ``mon_host`` and waits for a Ceph monitor's banner.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict

from glance_features.catalog import Entry, GlanceUse
from glance_features.detector import ProbeContext
from glance_features.detectors import _backends, _stores
from glance_features.errors import ConfigError
from glance_features.model import JSON, Status, Verdict
from glance_features.options import STORE_SELECTION
from glance_features.runas import checked_as
from glance_features.settings import Settings

if TYPE_CHECKING:  # typing has it from 3.11; Glance 28 runs on 3.10
    from typing import NotRequired

    from glance_features import checks

DRIVER = "rbd"
MODULES = ("rados", "rbd")
DEFAULT_CEPH_CONF = "/etc/ceph/ceph.conf"  # librados' search when the option is empty
# librados' default keyring search for cluster "ceph".
DEFAULT_KEYRINGS = (
    "/etc/ceph/$cluster.$name.keyring",
    "/etc/ceph/$cluster.keyring",
    "/etc/ceph/keyring",
    "/etc/ceph/keyring.bin",
)
MAX_CEPH_CONF = 1 << 20

CATALOG = Entry(
    purpose=(
        "glance_store's rbd driver keeps image data in a Ceph pool through librados and "
        "librbd; their Python bindings come only from the distribution's packages."
    ),
    options=STORE_SELECTION,
    required_when=_backends.required_when(DRIVER),
    packages={
        "debian": "python3-rbd python3-rados",
        "rhel": "python3-rbd python3-rados",
        "suse": "python3-rbd python3-rados",
        "arch": "ceph-libs",
    },
    verify=("glance-features --feature store-rbd --deep",),
    glance=GlanceUse("glance_store/_drivers/rbd.py: Store.configure_add(), get_connection()"),
)


class StoreRbdDetector(_stores.StoreDetector):
    name = "store-rbd"
    summary = "glance_store rbd backends: rados/rbd importable, ceph.conf and keyring readable"
    catalog = CATALOG
    driver = DRIVER
    modules = MODULES

    def files_to_read(self, backend: _backends.Backend, context: ProbeContext) -> list[str]:
        plan = _plan(backend, context.settings)
        return (
            []
            if isinstance(plan, str)
            else [p for p in (plan["ceph_conf"], *plan["keyrings"]) if p]
        )

    def missing(self, found: _stores.Found, context: ProbeContext) -> Verdict | None:
        return _bindings(found, context, _stores.system_copies, _stores.glance_store_version)

    def fake(self, status: Status, settings: Settings) -> Verdict:
        """The fake host has neither the distribution's bindings nor a
        glance_store to ask: nothing of this host is looked at."""
        if status is not Status.UNAVAILABLE:
            return super().fake(status, settings)
        found, context = self.fake_found(settings)
        verdict = _bindings(found, context, lambda module: [], lambda context: None)
        return verdict or super().fake(status, settings)

    def judge(
        self, backend: _backends.Backend, found: _stores.Found, context: ProbeContext
    ) -> Verdict:
        plan = _plan(backend, context.settings)
        return _judge(backend, plan, found, checked_as(context), context)


def _bindings(
    found: _stores.Found,
    context: ProbeContext,
    copies_of: Callable[[str], list[str]],
    store_of: Callable[[ProbeContext], str | None],
) -> Verdict | None:
    """Unavailable when rados or rbd does not import, with why: ``copies_of``
    says where the distribution put a module, ``store_of`` which glance_store
    the service runs."""
    from glance_features.remediation import install_system_packages

    missing = found.missing(MODULES)
    if not missing:
        return None
    python = found.python
    copies = {m: copies_of(m) for m in missing}
    details: dict[str, JSON] = {"missing_modules": missing, "system_copies": copies}
    names = " and ".join(missing)
    where = found.where
    installed = [p for paths in copies.values() for p in paths]
    fix = install_system_packages(CATALOG.packages, context.distro)
    if installed and python["venv"] and not python["system_site_packages"]:
        reason, fix = _hidden_from_venv(names, where, python, installed)
    elif installed:
        reason = (
            f"{names} cannot be imported by the service's interpreter {where} although the "
            f"distribution installed {', '.join(installed)}: "
            + "; ".join(f"{m}: {e}" for m, e in missing.items())
        )
    else:
        reason = (
            f"{names} cannot be imported by the service's interpreter {where} and no "
            "distribution package provides them (they are not on PyPI)"
        )
    store = details["glance_store"] = store_of(context)
    unchecked = _unchecked(store, context)
    if unchecked is not None:
        return Verdict(Status.UNAVAILABLE, reason + unchecked, details, fix)
    return Verdict(
        Status.UNAVAILABLE,
        reason + ': glance_store disables adding images ("The required libraries(rbd '
        'and rados) are not available"): Glance starts, and every upload to this backend '
        "fails (HTTP 410)",
        details,
        fix,
    )


def _hidden_from_venv(
    names: str, where: str, python: checks.PythonFound, installed: list[str]
) -> tuple[str, list[str]]:
    """Why a virtualenv without system site packages cannot see the
    distribution's bindings, and how to let it."""
    suffix = python["ext_suffix"] or ""
    reason = (
        f"{names} cannot be imported by the service's interpreter {where}: it is a "
        f"virtualenv ({python['prefix']}) without system site packages, so it cannot see "
        f"the distribution's bindings installed at {', '.join(installed)}"
    )
    cfg = os.path.join(python["prefix"], "pyvenv.cfg")
    fix = [
        "sed -i 's/^include-system-site-packages *=.*/include-system-site-packages = true/' "
        f"{cfg}  # or recreate the virtualenv with --system-site-packages"
    ]
    if any(p.endswith(".so") and suffix not in p for p in installed):
        reason += f" (and they are built for another Python than {suffix})"
        fix.append(
            "run Glance on the distribution's Python, whose version the bindings are built for"
        )
    return reason, fix


def _unchecked(store: str | None, context: ProbeContext) -> str | None:
    """What glance_store ``store`` does without the bindings, when it is a
    release before 4.4.0, which never checks for them: its driver calls
    rados.Rados on None. Measured with Debian 12's 4.1.0: in multi-store mode
    at start-up, which fails; the legacy store only on an upload."""
    if store is None or not GlanceUse("", versions="<4.4.0").used_by(store):
        return None
    if _backends.multi_store(context.settings):
        effect = "Glance fails to start"
    else:
        effect = "Glance starts, and every upload to this store fails (HTTP 500)"
    return (
        f": glance_store {store} does not check for them and calls rados.Rados on None "
        f"(\"'NoneType' object has no attribute 'Rados'\"): {effect}"
    )


class Plan(TypedDict):
    """What one rbd backend would use, as glance_store and librados read it."""

    pool: str | None
    connect_timeout: int | None
    ceph_conf: str
    rados_id: str
    keyrings: list[str]
    # From ceph.conf, when it can be read:
    keyring_explicit: NotRequired[bool]
    cephx: NotRequired[bool]
    mon_host: NotRequired[str]
    monitors: NotRequired[list[tuple[str, int]]]


def _plan(backend: _backends.Backend, settings: Settings) -> Plan | str:
    """The backend's plan, or the config error that stops Glance reading it."""
    try:
        conf = backend.get(settings, "rbd_store_ceph_conf", default="") or DEFAULT_CEPH_CONF
        # glance_store 5.7 passes str(rbd_store_user) as rados_id: unset, that
        # is the string "None", and librados authenticates as client.None.
        user = str(backend.get(settings, "rbd_store_user"))
        pool = backend.get(settings, "rbd_store_pool", default="images")
        connect_timeout = backend.get(settings, "rados_connect_timeout", "int", default=-1)
    except ConfigError as exc:
        return str(exc)
    plan = Plan(
        pool=pool,
        connect_timeout=connect_timeout,
        ceph_conf=str(conf),
        rados_id=str(user),
        keyrings=[],
    )
    parsed = _parse_ceph_conf(str(conf))
    if parsed is None:
        return plan
    name = f"client.{user}"
    explicit = _value(parsed, ("keyring",), (name, "client", "global"))
    candidates = explicit.split(",") if explicit else list(DEFAULT_KEYRINGS)
    plan["keyring_explicit"] = bool(explicit)
    plan["keyrings"] = [
        c.strip()
        .replace("$cluster", "ceph")
        .replace("${cluster}", "ceph")
        .replace("$name", name)
        .replace("${name}", name)
        for c in candidates
        if c.strip()
    ]
    auth = _value(parsed, ("auth_client_required", "auth_supported"), (name, "client", "global"))
    plan["cephx"] = (auth or "cephx").strip().lower() != "none"
    plan["mon_host"] = _value(parsed, ("mon_host",), ("global", name, "client")) or ""
    plan["monitors"] = _monitors(plan["mon_host"])
    return plan


def _parse_ceph_conf(path: str) -> dict[str, dict[str, str]] | None:
    """ceph.conf as Ceph reads it: keys with spaces, dashes or underscores alike."""
    from glance_features._platform import files

    try:
        text = files.read_text(path, MAX_CEPH_CONF)
    except files.ReadError:
        return None
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    try:
        parser.read_string(text.replace("\t", " "), path)
    except configparser.Error:
        return None
    out: dict[str, dict[str, str]] = {}
    for section in parser.sections():
        out[section.strip().lower()] = {
            re.sub(r"[ \-]+", "_", k.strip()): v.split(";")[0].split("#")[0].strip()
            for k, v in parser.items(section)
        }
    return out


def _value(
    parsed: dict[str, dict[str, str]], keys: tuple[str, ...], sections: tuple[str, ...]
) -> str:
    for section in sections:
        for key in keys:
            value = parsed.get(section, {}).get(key)
            if value:
                return value
    return ""


def _monitors(mon_host: str) -> list[tuple[str, int]]:
    """(host, port) of each monitor address in ``mon_host``, v1 and v2 forms."""
    found: list[tuple[str, int]] = []
    for item in re.split(r"[,;\s]+", mon_host.replace("[v", " v").replace("]", " ")):
        item = item.strip().strip("[]")
        if not item:
            continue
        port = 6789
        if item.startswith("v2:"):
            port, item = 3300, item[3:]
        elif item.startswith("v1:"):
            item = item[3:]
        item = item.split("/")[0]
        host = item
        match = re.fullmatch(r"\[?([0-9a-fA-F:]+:[0-9a-fA-F:]*)\]?(?::(\d+))?", item)
        if item.count(":") > 1 and match:  # IPv6, possibly [addr]:port
            host = match.group(1)
            if item.startswith("[") and match.group(2):
                port = int(match.group(2))
        elif ":" in item:
            host, _, text = item.rpartition(":")
            if text.isdigit():
                port = int(text)
        if (host, port) not in found:
            found.append((host, port))
    return found


def _judge(
    backend: _backends.Backend,
    plan: Plan | str,
    found: _stores.Found,
    user: str,
    context: ProbeContext,
) -> Verdict:
    if isinstance(plan, str):
        return Verdict(Status.UNAVAILABLE, plan, {}, ["fix the option's value"])
    conf = plan["ceph_conf"]
    details: dict[str, JSON] = {"ceph_conf": conf, "rados_id": plan["rados_id"]}
    details["pool"] = plan["pool"]
    if "mon_host" in plan:
        details["mon_host"] = plan["mon_host"]
    if plan["rados_id"] == "None":
        return Verdict(
            Status.UNAVAILABLE,
            f"{backend.label('rbd_store_user')} is not set: glance_store passes "
            "str(None) as the rados id, so librados authenticates as client.None, "
            "which no cluster has",
            details,
            [f"set {backend.label('rbd_store_user')} = glance  # the cephx user of Glance"],
        )
    unreadable = found.read(conf)["failure"]
    if unreadable is not None:
        return Verdict(
            Status.UNAVAILABLE,
            f"{conf} is not readable by {user}: {unreadable['errno']} ({unreadable['error']}); "
            "librados cannot connect to the cluster",
            details,
            [f"chgrp {user} {conf} && chmod g+r {conf}"],
        )
    keyrings = plan["keyrings"]
    failures = {k: found.read(k)["failure"] for k in keyrings}
    readable = [k for k, failure in failures.items() if failure is None]
    details["keyrings"] = keyrings
    if plan.get("cephx", True) and not readable:
        errnos = {k: failure["errno"] for k, failure in failures.items() if failure is not None}
        present = [k for k, name in errnos.items() if name != "ENOENT"]
        if present:
            problem = "; ".join(f"{k}: {errnos[k]}" for k in present)
            client = f"client.{plan['rados_id']}"
            reason = f"the keyring for {client} is not readable by {user} ({problem})"
            fix = [f"chgrp {user} {present[0]} && chmod g+r {present[0]}"]
        else:
            reason = f"no keyring for client.{plan['rados_id']} exists ({', '.join(keyrings)})"
            fix = [f"ceph auth get client.{plan['rados_id']} -o {keyrings[0]}"]
        return Verdict(
            Status.UNAVAILABLE,
            reason + ": cephx authentication fails and Glance cannot use the pool",
            details,
            fix,
        )
    details["keyring"] = readable[0] if readable else None
    return _monitors_verdict(plan, details, readable, user, context)


def _monitors_verdict(
    plan: Plan,
    details: dict[str, JSON],
    readable: list[str],
    user: str,
    context: ProbeContext,
) -> Verdict:
    """The verdict once the bindings and files are fine: whether a monitor answers."""
    conf = plan["ceph_conf"]
    monitors = plan.get("monitors", [])
    # In multi-store mode glance_store connects at start-up (a monitor that is
    # down holds the start for rados_connect_timeout, librados' 300 s by
    # default), the legacy store on each upload: either way no upload works
    # without a monitor, so the probe asks the monitors without --deep too
    # (Debian 12, 13 and unstable's legacy store answered HTTP 500).
    if not monitors and not context.deep and not _backends.multi_store(context.settings):
        return Verdict(
            Status.AVAILABLE,
            f"rados and rbd import; {user} can read {conf}"
            + (f" and {readable[0]}" if readable else "")
            + "; glance_store connects on first use (--deep looks for mon_host)",
            details,
        )
    if not monitors:
        return Verdict(
            Status.UNKNOWN,
            f"{conf} names no mon_host: librados would look the monitors up in DNS, "
            "which this probe does not do",
            details,
        )
    reached, errors = _reach(monitors, context)
    details["monitors_reached"] = [f"{h}:{p}" for h, p in reached]
    details["monitor_errors"] = errors
    if reached:
        return Verdict(
            Status.AVAILABLE,
            f"rados and rbd import, {conf} and its keyring are readable, and the monitor at "
            f"{reached[0][0]}:{reached[0][1]} answers as a Ceph monitor",
            details,
        )
    if not _backends.multi_store(context.settings):
        effect = "uploads to and downloads from this store fail"
    elif len(_backends.user_backends(context.settings)) == 1:
        # rbd.Store.get_connection raises BackendException when it is the only
        # backend, and create_multi_stores() lets it through init_app().
        effect = (
            "glance_store connects at start-up (waiting rados_connect_timeout), and with "
            "one backend Glance fails to start"
        )
    else:
        effect = (
            "glance_store connects at start-up (Glance's start waits rados_connect_timeout, "
            "librados' 300 s by default) and then disables adding images to this store"
        )
    return Verdict(
        Status.UNAVAILABLE,
        f"no monitor of {conf} accepts a connection ({'; '.join(errors)}): {effect}",
        details,
        [f"check mon_host in {conf} and the route to the monitors"],
    )


def _reach(
    monitors: list[tuple[str, int]], context: ProbeContext
) -> tuple[list[tuple[str, int]], list[str]]:
    """TCP connects to each monitor, sharing what remains of the deadline."""
    import contextlib

    from glance_features._platform import green

    real_socket = green.original("socket")
    reached: list[tuple[str, int]] = []
    errors: list[str] = []
    for host, port in monitors:
        timeout = min(context.remaining() / max(1, len(monitors)), 5.0)
        if timeout <= 0:
            errors.append(f"{host}:{port}: no time left")
            continue
        try:
            with real_socket.create_connection((host, port), timeout=timeout / 2) as conn:
                # A Ceph monitor sends its banner as soon as it accepts, in
                # either protocol ("ceph v027" msgr v1, "ceph v2\n" msgr2);
                # something else on the port, or a hung monitor, accepts (or
                # the kernel does, for a listener that never accepts) and then
                # librados waits in vain, as for a closed port.
                conn.settimeout(timeout / 2)
                banner = b""
                with contextlib.suppress(TimeoutError):
                    while len(banner) < 6 and (chunk := conn.recv(6 - len(banner))):
                        banner += chunk
        except TimeoutError:
            errors.append(f"{host}:{port}: no answer within {timeout / 2:.1f} s")
            continue
        except OSError as exc:
            errors.append(f"{host}:{port}: {exc.strerror or exc}")
            continue
        if banner == b"ceph v":
            reached.append((host, port))
            break
        errors.append(
            f"{host}:{port}: accepts connections but sends no Ceph banner within "
            f"{timeout / 2:.1f} s"
            if not banner
            else f"{host}:{port}: answers {banner!r}, not a Ceph monitor's banner"
        )
    return reached, errors
