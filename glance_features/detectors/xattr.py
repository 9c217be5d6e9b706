"""xattr: user extended attributes in the image cache, for the xattr cache driver.

Mirrors ``glance.image_cache.drivers.xattr.Driver.configure()``: the cache
directory (created by Glance when missing), a file ``checkme`` written with
three bytes, then ``xattr.setxattr`` through the ``xattr`` module; and the
subdirectories every cached image is written through.
:func:`glance_features.checks.xattr_cache` does it with the service account's
credentials, relative to directory descriptors opened without following links.
"""

from __future__ import annotations

import dataclasses
import os
import sys

from glance_features import checks, runas
from glance_features._platform.mounts import describe_mount
from glance_features.catalog import Entry, GlanceUse, RequiredWhen
from glance_features.detector import DetectorBase, ProbeContext, result
from glance_features.model import JSON, FeatureResult, Status, Verdict
from glance_features.options import IMAGE_CACHE_DIR, IMAGE_CACHE_DRIVER
from glance_features.remediation import install_python_packages
from glance_features.settings import Settings

GLANCE_CHECK_FILE = "checkme"  # the fixed name Glance's configure() writes

CATALOG = Entry(
    purpose=(
        "The xattr image-cache driver (image_cache_driver = xattr) keeps per-image "
        "statistics in user extended attributes of the cached files and prunes the "
        "cache by access time."
    ),
    options=(IMAGE_CACHE_DIR, IMAGE_CACHE_DRIVER),
    required_when=(
        RequiredWhen(
            "[DEFAULT] image_cache_driver = xattr",
            lambda s: s.get(IMAGE_CACHE_DRIVER) == "xattr",
        ),
    ),
    python=('xattr; sys_platform != "win32"',),
    packages={"debian": "python3-xattr", "rhel": "python3-pyxattr", "suse": "python3-xattr"},
    verify=("glance-features --feature xattr",),
    glance=GlanceUse(
        "glance/image_cache/drivers/xattr.py: Driver.configure()",
        measured="28.2.0 under uWSGI, 29.2.1 standalone, 33.0.0 under uWSGI, without a "
        "cache filter in the pipeline: tests/test_xattr_cases.py",
        # Two places build the cache: the v2 router's cache API controller,
        # loaded by every pipeline, whenever image_cache_dir is set; and the
        # cache filter of a caching flavor, whatever image_cache_dir is.
        runs_if=lambda s: bool(s.get(IMAGE_CACHE_DIR)) or _caching_flavor(s.raw("paste_deploy")),
        unused_if_not=(
            "never loads its image cache: image_cache_dir is unset (so the v2 cache API "
            "leaves it unloaded) and [paste_deploy] flavor has no cache filter"
        ),
    ),
)


def _caching_flavor(paste_deploy: dict[str, object]) -> bool:
    """Whether ``[paste_deploy] flavor`` picks a pipeline with Glance's cache
    filter (glance-api-paste.ini: ``caching``, ``cachemanagement``, each also
    after ``keystone+``)."""
    flavor = paste_deploy.get("flavor")
    return "cach" in str(flavor or "").lower()


class XattrDetector(DetectorBase):
    name = "xattr"
    summary = "user extended attributes in image_cache_dir (image_cache_driver = xattr)"
    catalog = CATALOG

    def fake(self, status: Status, settings: Settings) -> Verdict:
        return _fake(status, settings)

    def probe(self, context: ProbeContext) -> FeatureResult:
        if sys.platform == "win32":
            return result(
                self.name,
                Status.UNAVAILABLE,
                "extended attributes are not supported on Windows",
                {},
                ["use image_cache_driver = centralized_db on Windows"],
            )
        configured = context.settings.get(IMAGE_CACHE_DIR)
        user = runas.checked_as(context)
        details: dict[str, JSON] = {"image_cache_dir": configured, "checked_as": user}
        cache_dir = _usable(configured)
        if isinstance(cache_dir, Verdict):
            return cache_dir.result(self.name, details)
        binding = _binding(context)
        details.update(python=binding.python, binding=binding.provider)
        try:
            found = runas.run(context, checks.xattr_cache, cache_dir, GLANCE_CHECK_FILE)
        except runas.CheckFailed as exc:
            # The probe's own failure (no such account, a check that overran):
            # it says nothing about the cache directory.
            why = f"could not run the check as {user}: {exc}"
            return result(self.name, Status.UNKNOWN, why, details)
        details.update(
            cache_dir_exists=found["cache_dir_exists"],
            probed_dir=found["probed_dir"],
            stale_check_file=found["stale_check_file"],
        )
        failure = found["failure"]
        if failure is not None and failure["step"]:
            details["step"] = failure["step"]
        if found["links"]:
            details["links"] = list(found["links"])
        if found["check_file_link"]:
            details["check_file_link"] = found["check_file_link"]
        if found["unwritable_subdirs"]:
            details["unwritable_subdirs"] = dict(found["unwritable_subdirs"])
        if failure is not None:
            reason, fix = _explain(failure, found, cache_dir, user, details)
            return result(self.name, Status.UNAVAILABLE, reason, details, fix)
        if not binding.looked:
            return result(self.name, Status.UNKNOWN, str(binding.problem), details)
        if binding.problem is not None:
            describe_mount(str(found["probed_dir"] or cache_dir), details)
            return result(
                self.name,
                Status.UNAVAILABLE,
                binding.problem + "; Glance falls back to its sqlite cache driver",
                details,
                install_python_packages(
                    CATALOG.python, CATALOG.packages, binding.python, context.distro
                ),
            )
        if found["unwritable_subdirs"]:
            return _unwritable_subdirs(found, cache_dir, user, details)
        return _works(found, cache_dir, user, binding, details).result(self.name, details)


def _usable(cache_dir: str | None) -> str | Verdict:
    """``image_cache_dir``, or why Glance cannot use it as set, before any
    file is tried."""
    if not cache_dir:
        return Verdict(
            Status.UNAVAILABLE,
            "image_cache_dir is not set: Glance has no default and refuses to "
            "configure its image cache",
            remediation=["set [DEFAULT] image_cache_dir, e.g. /var/lib/glance/image-cache"],
        )
    if not os.path.isabs(cache_dir):
        return Verdict(
            Status.UNAVAILABLE,
            f"image_cache_dir {cache_dir!r} is a relative path: it would depend on "
            "the working directory of each Glance process",
            remediation=["set [DEFAULT] image_cache_dir to an absolute path"],
        )
    return cache_dir


def _works(
    found: checks.CacheFound, cache_dir: str, user: str, binding: Binding, details: dict[str, JSON]
) -> Verdict:
    """The verdict when Glance's driver configures and writes: its caveats, if any."""
    where = found["probed_dir"] or cache_dir
    link = found["check_file_link"]
    if link:
        stale = os.path.join(cache_dir, GLANCE_CHECK_FILE)
        return Verdict(
            Status.DEGRADED,
            f"user xattrs work in {where} as {user}, but {stale} is a symbolic link to "
            f"{link}: Glance's configure() writes through it (truncating {link})",
            remediation=[f"rm {stale}  # Glance's own check file; it recreates it"],
        )
    if not found["cache_dir_exists"]:
        where = f"{where} (Glance will create {cache_dir} there)"
    mount = describe_mount(where, details)
    if mount is not None and "noatime" in mount.options:
        return Verdict(
            Status.DEGRADED,
            f"user xattrs work in {where}, but {mount.mount_point} is mounted "
            "noatime: the xattr driver prunes the cache by access time",
            remediation=[
                f"mount -o remount,relatime {mount.mount_point}  "
                "# and replace noatime with relatime in /etc/fstab"
            ],
        )
    return Verdict(Status.AVAILABLE, f"user xattrs work in {where} as {user} ({binding.provider})")


@dataclasses.dataclass(frozen=True)
class Binding:
    """What Glance's ``import xattr`` finds in the service's interpreter."""

    python: str  # the interpreter looked at (or that could not be)
    provider: str | None  # "xattr 1.3.1" / "pyxattr 0.8.1"; None: none
    problem: str | None  # why Glance's import would fail, or could not be looked at
    looked: bool = True  # False: the interpreter could not be asked


def _binding(context: ProbeContext) -> Binding:
    """Whether Glance's ``import xattr`` and ``xattr.setxattr`` work in the
    service's interpreter: looked up in this process when it is that
    interpreter, else in a child of it."""
    from glance_features._platform import dists

    python = runas.service_python(context)
    if runas.is_service_interpreter(context):
        spec = dists.find_spec("xattr")
        versions = {d: dists.version(d) for d in ("xattr", "pyxattr")} if spec else {}
        python = runas.this_interpreter()
    else:
        try:
            found = runas.run(context, checks.interpreter, ["xattr", "pyxattr"])
        except runas.CheckFailed as exc:
            why = f"the xattr binding could not be looked for in {python}: {exc}"
            return Binding(python, None, why, looked=False)
        versions = {d: i["version"] if i else None for d, i in found["distributions"].items()}
        python = found["python"]["executable"]
    for dist in ("xattr", "pyxattr"):
        if versions.get(dist):
            # both provide the setxattr/getxattr functions Glance calls
            return Binding(python, f"{dist} {versions[dist]}", None)
    return Binding(
        python,
        None,
        "the Python xattr binding that Glance's cache driver imports is not installed "
        f"for the service's interpreter {python}",
    )


def _unwritable_subdirs(
    found: checks.CacheFound, cache_dir: str, user: str, details: dict[str, JSON]
) -> FeatureResult:
    """Glance's driver configures, then every cache write fails: each image is
    written into incomplete/ first (Debian's package ships the three
    subdirectories owned by root)."""
    import pwd

    owners = {}
    for sub, uid in found["unwritable_subdirs"].items():
        try:
            owners[sub] = pwd.getpwuid(uid).pw_name
        except KeyError:
            owners[sub] = str(uid)
    paths = [os.path.join(cache_dir, sub) for sub in sorted(owners)]
    listed = ", ".join(f"{p} (owned by {owners[os.path.basename(p)]})" for p in paths)
    return result(
        "xattr",
        Status.UNAVAILABLE,
        f"user xattrs work in {cache_dir}, but {user} cannot write in {listed}: Glance's "
        "xattr driver configures, then every cache write fails with PermissionError",
        details,
        [f"chown {user}:{user} {' '.join(paths)}"],
    )


def _explain(
    failure: checks.Failure,
    found: checks.CacheFound,
    cache_dir: str,
    user: str,
    details: dict[str, JSON],
) -> tuple[str, list[str]]:
    import errno

    code = failure["errno"] or "error"
    number = getattr(errno, code, 0) if code.startswith("E") else 0
    if number == errno.ENOTSUP:
        code = "EOPNOTSUPP"  # one number on Linux; Glance checks EOPNOTSUPP
    details["errno"] = code
    reason = f"{failure['step']}: {code} ({failure['error']})"
    mount = describe_mount(str(found["probed_dir"] or os.path.dirname(cache_dir)), details)
    point = mount.mount_point if mount else cache_dir
    fs_type = mount.fs_type if mount else "?"
    if number == errno.ENOTSUP:
        return _no_user_xattrs(fs_type, point, code)
    if failure["step"] == checks.SET_XATTR_STEP:
        return _configures_then_fails(number, reason, point, user)
    if found["stale_check_file"] and found["check_file_uid"] is not None:
        stale = os.path.join(cache_dir, GLANCE_CHECK_FILE)
        return (
            f"{reason}: {stale} was left by an earlier run as another user, and Glance's "
            f"configure() fails to open it as {user}",
            [f"rm {stale}  # Glance's own check file; it recreates it"],
        )
    if number in (errno.EACCES, errno.EPERM):
        return (
            f"{reason}: {user} cannot write there",
            [
                f"install -d -o {user} -g {user} -m 0750 {cache_dir}  "
                "# the cache dir itself, never a parent such as /var/lib"
            ],
        )
    if number == errno.EROFS:
        return (f"{reason}: {point} is mounted read-only", [f"mount -o remount,rw {point}"])
    if number in (errno.ENOSPC, errno.EDQUOT):
        # Before the setxattr call: Glance's makedirs or its write of checkme
        # raises out of configure(), and its cache does not load.
        return (
            f"{reason}: no space or quota left on {point} for {user}; Glance's "
            "configure() raises it, so its image cache fails to load (the API with it)",
            [f"free space on {point} or raise the quota of {user} on {point}"],
        )
    if number in (errno.ENOTDIR, errno.ENOENT):
        return (
            f"{reason}: Glance cannot use {cache_dir} as its cache directory",
            [f"point image_cache_dir at a directory, or remove what is at {cache_dir}"],
        )
    return reason, [f"check {cache_dir} and the file system mounted on {point}"]


def _no_user_xattrs(fs_type: str, point: str, code: str) -> tuple[str, list[str]]:
    fix = ["move image_cache_dir to a file system with user xattrs (ext4, xfs, btrfs)"]
    if fs_type not in ("ramfs", "tmpfs", "proc", "sysfs"):
        fix.insert(0, f"mount -o remount,user_xattr {point}  # and add user_xattr in /etc/fstab")
    return (
        f"{fs_type} on {point} does not support user xattrs ({code}): Glance's "
        "xattr driver refuses to configure and Glance falls back to sqlite",
        fix,
    )


def _configures_then_fails(
    number: int, reason: str, point: str, user: str
) -> tuple[str, list[str]]:
    """setxattr refused with anything but EOPNOTSUPP: Glance's configure()
    catches the error, ignores it (no fallback; checkme is left behind) and
    keeps the xattr driver, whose every cache write then sets user xattrs on
    the new file and fails: Glance accepts the configuration and fails at
    first use."""
    import errno

    then = (
        "Glance's xattr driver configures anyway (configure() ignores every setxattr "
        "error but EOPNOTSUPP, so there is no sqlite fallback) and fails at first use: "
        "every cache write sets user xattrs"
    )
    switch = "or set [DEFAULT] image_cache_driver = centralized_db (no xattrs needed)"
    if number in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"{reason}: no space or quota left on {point} for {user}; {then}",
            [f"free space on {point} or raise the quota of {user} on {point}", switch],
        )
    if number == errno.EPERM:
        return (
            f"{reason}: the kernel refused it to {user} (a seccomp filter such as systemd's "
            "SystemCallFilter= or a container profile, or a security module); " + then,
            [
                "allow setxattr and fsetxattr to the Glance service (systemd "
                "SystemCallFilter=, the container's seccomp profile, the LSM policy)",
                switch,
            ],
        )
    return f"{reason}; {then}", [f"check the file system mounted on {point}", switch]


def _fake(status: Status, settings: Settings) -> Verdict:
    """What this detector says in ``status`` on the fake host, for test doubles."""
    from glance_features import fake_host

    cache_dir = settings.get(IMAGE_CACHE_DIR) or fake_host.CACHE_DIR
    details: dict[str, JSON] = {
        "image_cache_dir": cache_dir,
        "binding": "xattr 1.1.0",
        "python": "/usr/bin/python3",
        "cache_dir_exists": True,
        "probed_dir": cache_dir,
        "stale_check_file": False,
        "checked_as": "glance",
        "mount_point": "/var/lib/glance",
        "fs_type": "ext4",
        "mount_source": "/dev/sdb1",
        "mount_options": ["rw", "relatime"],
    }
    if status is Status.UNAVAILABLE:
        # The classic: an NFSv3 export, which has no extended attributes at all.
        details.update(
            fs_type="nfs",
            mount_source="filer:/export/glance",
            mount_options=["rw", "relatime", "vers=3"],
            step="set a user xattr",
            errno="EOPNOTSUPP",
        )
        return Verdict(
            status,
            "nfs on /var/lib/glance does not support user xattrs (EOPNOTSUPP): Glance's "
            "xattr driver refuses to configure and Glance falls back to sqlite",
            details,
            [
                "mount -o remount,user_xattr /var/lib/glance  # and add user_xattr in /etc/fstab",
                "move image_cache_dir to a file system with user xattrs (ext4, xfs, btrfs)",
            ],
        )
    if status is Status.DEGRADED:
        details["mount_options"] = ["rw", "noatime"]
        return Verdict(
            status,
            f"user xattrs work in {cache_dir}, but /var/lib/glance is mounted noatime: "
            "the xattr driver prunes the cache by access time",
            details,
            [
                "mount -o remount,relatime /var/lib/glance  "
                "# and replace noatime with relatime in /etc/fstab"
            ],
        )
    return Verdict(status, f"user xattrs work in {cache_dir} as glance (xattr 1.1.0)", details, [])
