"""store-cinder: glance_store's cinder driver can import os-brick and attach volumes.

Mirrors ``glance_store._drivers.cinder`` (5.7): ``cinder/base.py`` imports
``os_brick.initiator.connector`` unconditionally, so without os-brick the
driver module does not import and Glance fails to start;
``Store.configure_add()`` then needs ``cinderclient``, ``os_brick`` and
``oslo_privsep``. Attaching a volume runs ``sudo glance-rootwrap
<rootwrap_config>`` (oslo.rootwrap) to start os-brick's privsep daemon, and
os-brick runs ``iscsiadm`` (iSCSI volumes) and ``multipathd``/``multipath``
(``cinder_use_multipath``) as root. Nothing here talks to Cinder.
"""

from __future__ import annotations

import configparser
import os

from glance_features.catalog import Entry, GlanceUse
from glance_features.detector import ProbeContext
from glance_features.detectors import _backends, _stores
from glance_features.model import JSON, Status, Verdict
from glance_features.options import STORE_SELECTION
from glance_features.remediation import pip_install
from glance_features.runas import checked_as

DRIVER = "cinder"
# What cinder/base.py and cinder/store.py import (l.45-50 and base.py l.18).
MODULES = (
    "os_brick",
    "os_brick.initiator.connector",
    "cinderclient.api_versions",
    "cinderclient.exceptions",
    "cinderclient.v3.client",
    "oslo_privsep.priv_context",
    "oslo_rootwrap",
)
DEFAULT_ROOTWRAP = "/etc/glance/rootwrap.conf"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_ROOTWRAP_CONF = 1 << 20

CATALOG = Entry(
    purpose=(
        "glance_store's cinder driver keeps each image in a Cinder volume that the Glance "
        "host attaches through os-brick (iSCSI, FC, NFS, RBD...), as root through "
        "glance-rootwrap and privsep; none of it is in Glance's requirements (extra 'cinder')."
    ),
    options=STORE_SELECTION,
    required_when=_backends.required_when(DRIVER),
    python=(
        "os-brick>=6.3.0",
        "python-cinderclient>=4.1.0",
        "oslo.privsep>=1.23.0",
        "oslo.rootwrap>=5.8.0",
    ),
    packages={
        "debian": "open-iscsi multipath-tools sudo",
        "rhel": "iscsi-initiator-utils device-mapper-multipath sudo",
        "suse": "open-iscsi multipath-tools sudo",
    },
    verify=("glance-features --feature store-cinder",),
    glance=GlanceUse(
        "glance_store/_drivers/cinder/base.py (import os_brick), "
        "cinder/store.py: Store.configure_add(), Store._open_cinder_volume()"
    ),
    # glance_store 5.7 registers it without secret=True; a password all the same.
    secrets=("cinder_store_password",),
)


class StoreCinderDetector(_stores.StoreDetector):
    name = "store-cinder"
    summary = "glance_store cinder backends: os-brick, cinderclient, privsep, rootwrap, iscsiadm"
    catalog = CATALOG
    driver = DRIVER
    modules = MODULES

    def executables(self, context: ProbeContext) -> list[str]:
        from glance_features import runas

        binaries = _binaries(runas.service_python(context))
        return [path for path in binaries.values() if path]

    def missing(self, found: _stores.Found, context: ProbeContext) -> Verdict | None:
        absent = found.missing(MODULES)
        if not absent:
            return None
        brick = any(m.startswith("os_brick") for m in absent)
        effect = (
            "glance_store's cinder driver module imports os_brick unconditionally, so "
            + _stores.FAILS_TO_START
            if brick
            else "glance_store disables adding images to cinder stores"
        )
        first = next(iter(absent.values()))
        names = ", ".join(dict.fromkeys(m.split(".")[0] for m in absent))
        return Verdict(
            Status.UNAVAILABLE,
            f"{names} cannot be imported by the service's interpreter {found.where} "
            f"({first}): {effect}",
            {"missing_modules": absent},
            [pip_install(CATALOG.python, found.python["executable"])],
        )

    def judge(
        self, backend: _backends.Backend, found: _stores.Found, context: ProbeContext
    ) -> Verdict:
        settings = context.settings
        binaries = _binaries(found.python["executable"])
        rootwrap = backend.get(settings, "rootwrap_config", default=DEFAULT_ROOTWRAP)
        multipath = backend.get(settings, "cinder_use_multipath", "bool", default=False)
        enforce = backend.get(settings, "cinder_enforce_multipath", "bool", default=False)
        details: dict[str, JSON] = {
            "rootwrap_config": rootwrap,
            "binaries": dict(binaries),
            "cinder_use_multipath": multipath,
        }
        refused = _cannot_run_rootwrap(context, found, binaries, str(rootwrap), details)
        refused = refused or _cannot_start_privsep(found, str(rootwrap), details)
        if refused is not None:
            return refused
        return _attach_tools(context, binaries, multipath, enforce, str(rootwrap), details)


def _cannot_run_rootwrap(
    context: ProbeContext,
    found: _stores.Found,
    binaries: dict[str, str | None],
    rootwrap: str,
    details: dict[str, JSON],
) -> Verdict | None:
    """Why glance_store cannot run ``sudo glance-rootwrap`` as the account."""
    python = found.python["executable"]
    for name in ("sudo", "glance-rootwrap"):
        path = binaries[name]
        if path is None or not found.files["exec"].get(path):
            fix = (
                _system(context, "sudo")
                if name == "sudo"
                else [pip_install("oslo.rootwrap>=5.8.0", python)]
            )
            return Verdict(
                Status.UNAVAILABLE,
                f"{name} is not found or not executable by {checked_as(context)}: "
                f"glance_store cannot run 'sudo glance-rootwrap {rootwrap}' to attach volumes",
                details,
                fix,
            )
    return None


def _cannot_start_privsep(
    found: _stores.Found, rootwrap: str, details: dict[str, JSON]
) -> Verdict | None:
    """Why glance-rootwrap, as configured, cannot start os-brick's privsep daemon."""
    from glance_features._platform import proc

    python = found.python["executable"]
    rootwrap_conf = _rootwrap_conf(rootwrap)
    filters = rootwrap_conf["filters_path"] if rootwrap_conf else None
    details["filters_path"] = filters
    if rootwrap_conf is None or not filters:
        return Verdict(
            Status.UNAVAILABLE,
            f"rootwrap_config {rootwrap} is missing or has no filters_path: "
            "glance-rootwrap refuses every command, so no volume attaches",
            details,
            [_install_rootwrap(rootwrap, found.python["prefix"])],
        )
    # os-brick's privileged calls run in a privsep daemon that glance-rootwrap
    # starts: a filter must allow privsep-helper, and rootwrap must find it.
    if not _privsep_filter(filters):
        return Verdict(
            Status.UNAVAILABLE,
            f"no filter in {', '.join(filters)} lets glance-rootwrap start "
            "privsep-helper for os_brick.privileged.default: os-brick's privileged "
            "daemon never starts, so no volume attaches",
            details,
            [_install_rootwrap(rootwrap, found.python["prefix"])],
        )
    exec_dirs = rootwrap_conf["exec_dirs"]
    details["exec_dirs"] = exec_dirs
    helper = proc.which("privsep-helper", os.pathsep.join(exec_dirs))
    details["privsep_helper"] = helper
    if helper is not None:
        return None
    here = proc.which("privsep-helper", os.path.dirname(python))
    return Verdict(
        Status.UNAVAILABLE,
        "privsep-helper is not in rootwrap's exec_dirs "
        f"({', '.join(exec_dirs)}): glance-rootwrap cannot start os-brick's "
        "privileged daemon",
        details,
        [
            f"add {os.path.dirname(here)} to exec_dirs in {rootwrap}"
            if here
            else pip_install("oslo.privsep>=1.23.0", python)
        ],
    )


def _attach_tools(
    context: ProbeContext,
    binaries: dict[str, str | None],
    multipath: bool,
    enforce: bool,
    rootwrap: str,
    details: dict[str, JSON],
) -> Verdict:
    """The verdict once privsep starts: what the attach tools allow."""
    if multipath and not binaries["multipathd"]:
        status = Status.UNAVAILABLE if enforce else Status.DEGRADED
        return Verdict(
            status,
            "cinder_use_multipath is set but multipathd is not installed: "
            + (
                "cinder_enforce_multipath makes every attach fail"
                if enforce
                else "os-brick falls back to single paths"
            ),
            details,
            _system(context, "multipath"),
        )
    if not binaries["iscsiadm"]:
        return Verdict(
            Status.DEGRADED,
            "iscsiadm is not installed: volumes on iSCSI backends cannot attach "
            "(other protocols may)",
            details,
            _system(context, "iscsi"),
        )
    return Verdict(
        Status.AVAILABLE,
        "os-brick, cinderclient, privsep and rootwrap import; sudo, glance-rootwrap "
        f"and iscsiadm are installed; {rootwrap} lets glance-rootwrap start "
        f"{details['privsep_helper']} for os-brick",
        details,
    )


def _binaries(python: str) -> dict[str, str | None]:
    from glance_features._platform import proc

    binaries = {
        name: proc.which(name, SYSTEM_PATH)
        for name in ("sudo", "iscsiadm", "multipath", "multipathd")
    }
    # sudo finds glance-rootwrap on its secure_path; pip puts it beside the interpreter.
    binaries["glance-rootwrap"] = proc.which(
        "glance-rootwrap", os.pathsep.join([os.path.dirname(python), SYSTEM_PATH])
    )
    return binaries


def _rootwrap_conf(path: str) -> dict[str, list[str]] | None:
    """filters_path (existing directories) and exec_dirs of a rootwrap config,
    as root reads it (glance-rootwrap runs under sudo), or None."""
    from glance_features._platform import files

    try:
        text = files.read_text(path, MAX_ROOTWRAP_CONF)
    except files.ReadError:
        return None
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(text, path)
    except configparser.Error:
        return None

    def dirs(name: str, default: str) -> list[str]:
        value = parser.get("DEFAULT", name, fallback=default)
        return [d.strip() for d in value.split(",") if d.strip()]

    return {
        "filters_path": [d for d in dirs("filters_path", "") if os.path.isdir(d)],
        # oslo.rootwrap searches the PATH sudo gives it when exec_dirs is unset.
        "exec_dirs": dirs("exec_dirs", SYSTEM_PATH.replace(":", ",")),
    }


def _privsep_filter(directories: list[str]) -> bool:
    """A rootwrap filter line that runs privsep-helper for os-brick's context."""
    from glance_features._platform import files

    for directory in directories:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if not name.endswith(".filters"):
                continue
            try:
                text = files.read_text(os.path.join(directory, name), MAX_ROOTWRAP_CONF)
            except files.ReadError:
                continue
            for line in text.splitlines():
                line = line.split("#", 1)[0]
                if "privsep-helper" in line and "os_brick.privileged" in line:
                    return True
    return False


def _install_rootwrap(target: str, prefix: str) -> str:
    # pip installs glance_store's rootwrap config and filters under the venv's etc/.
    shipped = os.path.join(prefix, "etc", "glance")
    if os.path.isfile(os.path.join(shipped, "rootwrap.conf")):
        return (
            f"install -m 0644 {shipped}/rootwrap.conf {target} && "
            f"install -d /etc/glance/rootwrap.d && install -m 0644 "
            f"{shipped}/rootwrap.d/*.filters /etc/glance/rootwrap.d/"
        )
    return (
        f"install glance_store's etc/glance/rootwrap.conf as {target} and its "
        "rootwrap.d/glance_cinder_store.filters in its filters_path"
    )


def _system(context: ProbeContext, which: str) -> list[str]:
    from glance_features.remediation import install_system_packages

    names = {
        "sudo": {"debian": "sudo", "rhel": "sudo", "suse": "sudo"},
        "iscsi": {"debian": "open-iscsi", "rhel": "iscsi-initiator-utils", "suse": "open-iscsi"},
        "multipath": {
            "debian": "multipath-tools",
            "rhel": "device-mapper-multipath",
            "suse": "multipath-tools",
        },
    }[which]
    return install_system_packages(names, context.distro)
