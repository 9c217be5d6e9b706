"""store-file: glance_store's file store can write images where it is told to.

Mirrors ``glance_store._drivers.filesystem.Store.configure_add()`` (5.7):
exactly one of ``filesystem_store_datadir`` and ``filesystem_store_datadirs``,
a ``filesystem_store_file_perm`` the owner can read, each directory created
when missing and ``os.access(W_OK)`` on it, and the metadata file readable.
Where that fails glance_store only disables adding images (``configure`` runs
with ``re_raise_bsc=False``), so Glance starts and uploads fail later. Free
space is not checked by glance_store; ``add()`` raises ``StorageFull`` when it
runs out, so a full directory is degraded here.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from typing import Literal, overload

from glance_features import checks, runas
from glance_features._platform.mounts import describe_mount
from glance_features.catalog import Entry, GlanceUse, RequiredWhen
from glance_features.detector import DetectorBase, ProbeContext, result
from glance_features.detectors import _backends, _stores
from glance_features.errors import ConfigError
from glance_features.model import JSON, FeatureResult, Status, Verdict
from glance_features.options import DEFAULT_DATADIR, LEGACY_DATADIR, STORE_SELECTION, Kind
from glance_features.runas import checked_as
from glance_features.settings import Settings

DRIVER = "file"

# What a reserved store is for, said where it fails.
ROLES = {
    "os_glance_staging_store": " (Glance's reserved staging store: image import stages data there)",
    "os_glance_tasks_store": " (Glance's reserved tasks store: import tasks keep data there)",
}

CATALOG = Entry(
    purpose=(
        "glance_store's file store keeps image data as files in filesystem_store_datadir; "
        "Glance also configures two reserved file stores (staging and tasks) whenever "
        "enabled_backends is set, and interoperable image import stages data there."
    ),
    options=(*STORE_SELECTION, LEGACY_DATADIR),
    required_when=(
        *_backends.required_when(DRIVER),
        # Glance adds its reserved staging and tasks file stores in multi-store mode.
        RequiredWhen(
            "[DEFAULT] enabled_backends is set (Glance adds its reserved file stores "
            "os_glance_staging_store and os_glance_tasks_store)",
            _backends.multi_store,
        ),
    ),
    verify=("glance-features --feature store-file",),
    glance=GlanceUse(
        "glance/common/wsgi_app.py: init_app() -> glance_store.create_multi_stores() -> "
        "glance_store/_drivers/filesystem.py: Store.configure_add()"
    ),
)


class StoreFileDetector(DetectorBase):
    name = "store-file"
    summary = "glance_store file backends: data directories writable by the service, with space"
    catalog = CATALOG

    def probe(self, context: ProbeContext) -> FeatureResult:
        settings = context.settings
        try:
            found_backends = _backends.backends(settings, DRIVER)
        except ConfigError as exc:
            return result(self.name, Status.UNAVAILABLE, str(exc), {})
        shared = _backends.multi_store(settings) and bool(found_backends) and reads_shared(context)
        plans = {b.id: _plan(b, settings, shared) for b in found_backends}
        usable = [p for p in plans.values() if isinstance(p, FilePlan)]
        write = [d for plan in usable for d in plan.dirs]
        read = [plan.metadata_file for plan in usable if plan.metadata_file]
        user = checked_as(context)
        verdicts: dict[str, Verdict] = {}
        if plans:
            try:
                found = _stores.find(context, write=write, read=read)
            except runas.CheckFailed as exc:
                return _stores.unknown(self.name, str(exc), {"checked_as": user})
            verdicts = {
                backend_id: _judge(plan, found, user) if isinstance(plan, FilePlan) else plan
                for backend_id, plan in plans.items()
            }
        return _stores.fold(
            self.name,
            DRIVER,
            verdicts,
            {"checked_as": user, "multi_store": _backends.multi_store(settings)},
            lambda: Verdict(Status.AVAILABLE, "no file backend is configured: nothing to check"),
        )


# glance_store 5.0.0 and later: a multi-store backend's option left unset in
# its own group is read from [backend_defaults], whose defaults are the
# driver's. That holds for the reserved staging and tasks stores too, so their
# default directory is the driver's /var/lib/glance/images, no longer
# /var/lib/glance/<store>. Measured on 28-33 both ways, staging and uploading:
# tests/test_release_cases.py (glance_store 4.7.1-4.9.1 ignore the group).
SHARED_GROUP = "backend_defaults"
READS_SHARED = ">=5.0.0"


def reads_shared(context: ProbeContext) -> bool:
    """Whether the service's glance_store reads [backend_defaults]; an unknown
    version is judged as the newest."""
    version = _stores.glance_store_version(context)
    return version is None or GlanceUse("", versions=READS_SHARED).used_by(version) is not False


@overload
def _option(
    backend: _backends.Backend,
    settings: Settings,
    shared: bool,
    name: str,
    kind: Literal["str"] = ...,
    default: str | None = ...,
) -> tuple[str | None, str | None]: ...
@overload
def _option(
    backend: _backends.Backend,
    settings: Settings,
    shared: bool,
    name: str,
    kind: Literal["int"],
    default: int | None = ...,
) -> tuple[int | None, str | None]: ...
def _option(
    backend: _backends.Backend,
    settings: Settings,
    shared: bool,
    name: str,
    kind: Kind = "str",
    default: JSON = None,
) -> tuple[JSON, str | None]:
    """The option as the driver reads it: its own group, else (``shared``)
    [backend_defaults] with the driver's default."""
    if shared and not backend.is_set(settings, name):
        group = _backends.Backend(SHARED_GROUP, DRIVER, SHARED_GROUP)
        driver_default = DEFAULT_DATADIR if name == "filesystem_store_datadir" else default
        return _backends.option_value(group, settings, name, kind, default=driver_default)
    return _backends.option_value(backend, settings, name, kind, default=default)


@dataclasses.dataclass(frozen=True)
class FilePlan:
    """What one file backend would use, as glance_store reads its options."""

    backend: _backends.Backend
    dirs: list[str]  # the data directories, in glance_store's order
    metadata_file: str | None


def _plan(
    backend: _backends.Backend, settings: Settings, shared: bool = False
) -> FilePlan | Verdict:
    """The directories and metadata file Glance would use, or why it refuses."""
    default = f"/var/lib/glance/{backend.id}" if backend.reserved else DEFAULT_DATADIR
    datadir, error = _option(backend, settings, shared, "filesystem_store_datadir", default=default)
    datadirs, error2 = _option(backend, settings, shared, "filesystem_store_datadirs")
    perm, error3 = _option(backend, settings, shared, "filesystem_store_file_perm", "int", 0)
    meta, error4 = _option(backend, settings, shared, "filesystem_store_metadata_file")
    details: dict[str, JSON] = {"reserved": backend.reserved, "datadir": datadir}
    if shared and not backend.is_set(settings, "filesystem_store_datadir"):
        details["datadir_from"] = f"[{SHARED_GROUP}] filesystem_store_datadir or its default"
    problem = error or error2 or error3 or error4
    if problem:
        return _refuse(problem, details, "fix the option's value")
    if datadir and datadirs and not backend.reserved:
        return _refuse(
            "both filesystem_store_datadir (default "
            f"{DEFAULT_DATADIR}) and filesystem_store_datadirs are set: glance_store "
            "refuses (\"Specify either 'filesystem_store_datadir' or "
            "'filesystem_store_datadirs' option\")",
            details,
            f"set {backend.label('filesystem_store_datadir')} = (empty) when using "
            "filesystem_store_datadirs",
        )
    if not datadir and not datadirs:
        return _refuse("no data directory is set", details, "set it")
    dirs = [datadir] if datadir else [_datadir_path(str(datadirs))]
    details["datadir"] = dirs[0]
    refused = _refused_layout(backend, perm, dirs, details)
    return refused or FilePlan(backend, dirs, str(meta) if meta else None)


def _refused_layout(
    backend: _backends.Backend, perm: int | None, dirs: list[str], details: dict[str, JSON]
) -> Verdict | None:
    """A file mode or a directory glance_store refuses, if any."""
    if perm and perm > 0:
        try:
            mode = int(str(perm), 8)
        except ValueError:
            mode = 0
        if not mode & stat.S_IRUSR:
            return _refuse(
                f"filesystem_store_file_perm = {perm} leaves image files unreadable by "
                "their owner: glance_store refuses it",
                details,
                f"set {backend.label('filesystem_store_file_perm')} = 0 or e.g. 640",
            )
    for directory in dirs:
        if not os.path.isabs(directory):
            return _refuse(
                f"{directory!r} is a relative path: it would depend on the working "
                "directory of each Glance process",
                details,
                f"set {backend.label('filesystem_store_datadir')} to an absolute path",
            )
    return None


def _datadir_path(value: str) -> str:
    # "path:priority", as glance_store's _get_datadir_path_and_priority splits it.
    return value.rsplit(":", 1)[0].strip() if ":" in value else value.strip()


def _refuse(reason: str, details: dict[str, JSON], fix: str) -> Verdict:
    return Verdict(
        Status.UNAVAILABLE,
        f"{reason}; Glance disables adding images to this store",
        details,
        [fix],
    )


def _judge(plan: FilePlan, found: _stores.Found, user: str) -> Verdict:
    backend, dirs, meta = plan.backend, plan.dirs, plan.metadata_file
    role = ROLES.get(backend.id, "") if backend.reserved else ""
    details: dict[str, JSON] = {"reserved": backend.reserved, "datadir": dirs[0]}
    for directory in dirs:
        seen = found.files["write"][directory]
        details.update(
            exists=seen["exists"],
            probed_dir=seen["probed_dir"],
            free_bytes=seen["free_bytes"],
            free_inodes=seen["free_inodes"],
        )
        describe_mount(seen["probed_dir"], details)
        failure = seen["failure"]
        if failure is not None:
            details["errno"] = failure["errno"]
            verdict = _failed(directory, seen["probed_dir"], failure, user, role, details)
            if backend.id == "os_glance_staging_store" and verdict.status is Status.UNAVAILABLE:
                # Measured on 28-33 both ways (tests/test_release_cases.py).
                verdict = dataclasses.replace(
                    verdict,
                    reason=verdict.reason + "; Glance still starts, and every image import "
                    "fails when it stages data (HTTP 500 on PUT /v2/images/{id}/stage)",
                )
            return verdict
        if seen["free_bytes"] == 0 or seen["free_inodes"] == 0:
            point = details.get("mount_point", directory)
            return Verdict(
                Status.DEGRADED,
                f"{directory} is writable by {user}, but {point} is full: uploads fail "
                f"with StorageFull{role}",
                details,
                [f"free space on {point} or move {backend.label('filesystem_store_datadir')}"],
            )
    if meta:
        unreadable = found.read(meta)["failure"]
        details["metadata_file"] = meta
        if unreadable is not None:
            return Verdict(
                Status.UNAVAILABLE,
                f"filesystem_store_metadata_file {meta} is not readable by {user}: "
                f"{unreadable['errno']} ({unreadable['error']}); Glance disables adding images "
                "to this store",
                details,
                [f"chmod o+r {meta}  # or chgrp {user} {meta} && chmod g+r {meta}"],
            )
    where = dirs[0]
    if not details.get("exists", True):
        where = f"{details.get('probed_dir')} (Glance creates {dirs[0]} there)"
    free = details.get("free_bytes")
    space = f", {free // (1 << 20)} MiB free" if isinstance(free, int) else ""
    return Verdict(Status.AVAILABLE, f"{user} can write in {where}{space}{role}", details)


def _failed(
    directory: str,
    where: str,
    failure: checks.Failure,
    user: str,
    role: str,
    details: dict[str, JSON],
) -> Verdict:
    """Why glance_store's write check fails on ``directory`` (``where``: the
    directory that exists and was tried)."""
    code = failure["errno"]
    point = details.get("mount_point", directory)
    if code in ("ENOSPC", "EDQUOT"):
        return Verdict(
            Status.DEGRADED,
            f"{where} accepts no new file ({code}): {point} is full or {user}'s quota is "
            f"used up; uploads fail with StorageFull{role}",
            details,
            [f"free space on {point} or raise the quota of {user}"],
        )
    if code == "EROFS":
        return Verdict(
            Status.UNAVAILABLE,
            f"{point} is mounted read-only: glance_store's write check on {where} fails "
            f"and Glance disables adding images to this store{role}",
            details,
            [f"mount -o remount,rw {point}"],
        )
    if code in ("EACCES", "EPERM"):
        owner = _owner(str(where))
        if where == directory:
            reason = (
                f"{user} cannot write in {where} (owned by {owner}, {code}): glance_store's "
                "write check fails and Glance disables adding images to this store"
            )
        else:
            reason = (
                f"{directory} does not exist and {user} cannot create it in {where} "
                f"(owned by {owner}, {code}): Glance disables adding images to this store"
            )
        return Verdict(
            Status.UNAVAILABLE,
            reason + role,
            details | {"owner": owner},
            [
                f"install -d -o {user} -g {user} -m 0750 {directory}  "
                "# the data directory itself, never a parent such as /var/lib"
            ],
        )
    return Verdict(
        Status.UNAVAILABLE,
        f"{directory}: {code} ({failure['error']}); Glance disables adding images to this "
        f"store{role}",
        details,
        [f"point filesystem_store_datadir at a directory {user} can write"],
    )


def _owner(path: str) -> str:
    import pwd

    try:
        uid = os.stat(path).st_uid
    except OSError:
        return "?"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
