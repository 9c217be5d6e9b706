"""xattr: user extended attributes in the image cache, for the xattr cache driver.

Mirrors ``glance.image_cache.drivers.xattr.Driver.configure()``: the cache
directory (created by Glance when missing), a file ``checkme`` written with
three bytes, then ``xattr.setxattr`` through the ``xattr`` module. The check
runs with the service user's credentials, in a child when that user is not
this process's, and works relative to a directory descriptor opened without
following links.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from glance_features._platform.mounts import describe_mount
from glance_features._platform.proc import current_user
from glance_features.catalog import Entry, GlanceUse, RequiredWhen
from glance_features.detector import ProbeContext, result
from glance_features.model import FeatureResult, Status
from glance_features.remediation import pip_install
from glance_features.settings import Option

IMAGE_CACHE_DIR = Option("DEFAULT", "image_cache_dir")
IMAGE_CACHE_DRIVER = Option("DEFAULT", "image_cache_driver", default="centralized_db")
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
    verify=("glance-features --feature xattr",),
    glance=GlanceUse("glance/image_cache/drivers/xattr.py: Driver.configure()"),
)

# Runs as the service user: in this process, or in `python -I -c` as that user.
# Standard library only, so it runs wherever the interpreter does.
CHECK = r"""
import errno, json, os, stat, sys

def check(cache_dir, check_file):
    out = {}
    parts = [p for p in cache_dir.split("/") if p]
    # O_PATH: walking needs search permission only, as Glance's path lookups
    # do; a directory the user may traverse but not list must not stop us.
    flags = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open("/", flags)
    except OSError as exc:
        return {"step": "open /", "errno": exc.errno, "error": exc.strerror}
    missing = []
    try:
        for i, part in enumerate(parts):
            try:
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                missing = parts[i:]
                break
            except OSError as exc:
                return {"step": "stat " + "/" + "/".join(parts[:i + 1]), "errno": exc.errno,
                        "error": exc.strerror}
            here = "/" + "/".join(parts[:i + 1])
            if stat.S_ISLNK(st.st_mode):
                # Follow a link only when its target exists and is a directory,
                # as Glance's makedirs and open would; report where it led.
                target = os.path.realpath(here)
                if not os.path.isdir(target):
                    return {"step": "resolve " + here, "errno": errno.ENOENT if not
                            os.path.lexists(target) or not os.path.exists(target) else
                            errno.ENOTDIR, "error": "a symbolic link to " + target +
                            (" which does not exist" if not os.path.exists(target) else
                             " which is not a directory")}
                out.setdefault("links", []).append(here + " -> " + target)
            elif not stat.S_ISDIR(st.st_mode):
                return {"step": "open " + here, "errno": errno.ENOTDIR,
                        "error": "not a directory"}
            try:
                if stat.S_ISLNK(st.st_mode):
                    nfd = os.open(target, flags)
                else:
                    nfd = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                return {"step": "open " + here, "errno": exc.errno, "error": exc.strerror}
            os.close(fd)
            fd = nfd
        existing = "/" + "/".join(parts[:len(parts) - len(missing)])
        out["cache_dir_exists"] = not missing
        out["probed_dir"] = existing
        # Glance's set_paths() makes incomplete/, invalid/ and queue/ (and the
        # cache dir itself when missing), then creates checkme: each takes an
        # inode. A file system with inodes to count must have them free.
        if missing:
            needed = len(missing) + 3 + 1
        else:
            needed = 0
            for sub in ("incomplete", "invalid", "queue", check_file):
                try:
                    os.stat(sub, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    needed += 1
                except OSError:
                    pass
        vfs = os.fstatvfs(fd)
        if vfs.f_files and vfs.f_favail < needed:
            return dict(out, step="create Glance's cache layout in " + existing,
                        errno=errno.ENOSPC, error="%d free inodes, %d needed" %
                        (vfs.f_favail, needed))
        if missing:
            # Glance creates the directory; it can when it may write the parent.
            if not _writable(fd):
                return dict(out, step="create " + cache_dir, errno=errno.EACCES,
                            error="cannot create it under " + existing)
        else:
            try:
                st = os.stat(check_file, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None and stat.S_ISLNK(st.st_mode):
                # Glance's open() follows it and writes through it; never here.
                here = os.path.join(cache_dir, check_file)
                target = os.path.realpath(here)
                out["stale_check_file"] = True
                out["check_file_link"] = target
                parent = os.path.dirname(target)
                if not (os.access(target, os.W_OK) if os.path.lexists(target) else
                        os.path.isdir(parent) and os.access(parent, os.W_OK | os.X_OK)):
                    return dict(out, step="open " + here, errno=errno.EACCES,
                                error="a symbolic link to " + target +
                                " that this user cannot write", check_file_uid=st.st_uid)
            elif st is not None:
                out["stale_check_file"] = True
                try:
                    os.close(os.open(check_file, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                     dir_fd=fd))
                except OSError as exc:
                    return dict(out, step="open " + os.path.join(cache_dir, check_file),
                                errno=exc.errno, error=exc.strerror, check_file_uid=st.st_uid)
        # A nameless file (O_TMPFILE): nothing to remove, nothing left if the
        # probe is cut off, the directory itself unchanged. Where the file
        # system lacks O_TMPFILE, a named file is unlinked right after its
        # exclusive create, before anything else is done with it.
        pfd = None
        tmpfile = getattr(os, "O_TMPFILE", 0)
        if tmpfile:
            try:
                pfd = os.open(".", tmpfile | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                    return dict(out, step="create a file in " + existing, errno=exc.errno,
                                error=exc.strerror)
        if pfd is None:
            name = ".glance-features-probe-" + os.urandom(8).hex()
            try:
                pfd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                              os.O_CLOEXEC, 0o600, dir_fd=fd)
            except OSError as exc:
                return dict(out, step="create a file in " + existing, errno=exc.errno,
                            error=exc.strerror)
            try:
                os.unlink(name, dir_fd=fd)
            except OSError:
                pass
        step = "write to a file in " + existing
        try:
            os.write(pfd, b"XXX")
            os.fsync(pfd)
            step = "set a user xattr"
            value = os.urandom(8)
            os.setxattr(pfd, "user.glance-features.probe", value)
            if os.getxattr(pfd, "user.glance-features.probe") != value:
                raise OSError(errno.EIO, "the attribute read back differs")
        except OSError as exc:
            return dict(out, step=step, errno=exc.errno, error=exc.strerror)
        finally:
            os.close(pfd)
        return out
    finally:
        os.close(fd)

def _writable(fd):
    return os.access("/proc/self/fd/%d" % fd, os.W_OK | os.X_OK)

print(json.dumps(check(sys.argv[1], sys.argv[2])))
"""


class XattrDetector:
    name = "xattr"
    summary = "user extended attributes in image_cache_dir (image_cache_driver = xattr)"
    catalog = CATALOG

    def probe(self, context: ProbeContext) -> FeatureResult:
        if sys.platform == "win32":
            return result(
                self.name,
                Status.UNAVAILABLE,
                "extended attributes are not supported on Windows",
                {},
                ["use image_cache_driver = centralized_db on Windows"],
            )
        cache_dir = context.settings.get(IMAGE_CACHE_DIR)
        user = context.user or current_user()
        details: dict[str, Any] = {"image_cache_dir": cache_dir, "checked_as": user}
        if not cache_dir:
            return result(
                self.name,
                Status.UNAVAILABLE,
                "image_cache_dir is not set: Glance has no default and refuses to "
                "configure its image cache",
                details,
                ["set [DEFAULT] image_cache_dir, e.g. /var/lib/glance/image-cache"],
            )
        if not os.path.isabs(cache_dir):
            return result(
                self.name,
                Status.UNAVAILABLE,
                f"image_cache_dir {cache_dir!r} is a relative path: it would depend on "
                "the working directory of each Glance process",
                details,
                ["set [DEFAULT] image_cache_dir to an absolute path"],
            )
        binding = _binding(details)
        found = run_check(cache_dir, context)
        details.update({k: v for k, v in found.items() if k not in ("errno", "error")})
        if "probe_error" in found:
            return result(self.name, Status.UNKNOWN, str(found["probe_error"]), details)
        if "errno" in found:
            reason, fix = _explain(found, cache_dir, user, details)
            return result(self.name, Status.UNAVAILABLE, reason, details, fix)
        if binding is not None:
            describe_mount(str(found.get("probed_dir", cache_dir)), details)
            return result(
                self.name,
                Status.UNAVAILABLE,
                binding + "; Glance falls back to its sqlite cache driver",
                details,
                [pip_install("xattr")],
            )
        where = found.get("probed_dir", cache_dir)
        link = found.get("check_file_link")
        if link:
            stale = os.path.join(cache_dir, GLANCE_CHECK_FILE)
            return result(
                self.name,
                Status.DEGRADED,
                f"user xattrs work in {where} as {user}, but {stale} is a symbolic link to "
                f"{link}: Glance's configure() writes through it (truncating {link})",
                details,
                [f"rm {stale}  # Glance's own check file; it recreates it"],
            )
        if not found.get("cache_dir_exists", True):
            where = f"{where} (Glance will create {cache_dir} there)"
        mount = describe_mount(str(found.get("probed_dir", cache_dir)), details)
        if mount is not None and "noatime" in mount.options:
            return result(
                self.name,
                Status.DEGRADED,
                f"user xattrs work in {where}, but {mount.mount_point} is mounted "
                "noatime: the xattr driver prunes the cache by access time",
                details,
                [
                    f"mount -o remount,relatime {mount.mount_point}  "
                    "# and replace noatime with relatime in /etc/fstab"
                ],
            )
        return result(
            self.name,
            Status.AVAILABLE,
            f"user xattrs work in {where} as {user} ({details['binding']})",
            details,
        )


def _check_function() -> Any:
    """CHECK's ``check`` function, compiled in this process."""
    namespace: dict[str, Any] = {"__name__": "glance_features_check"}
    code = CHECK.replace("print(json.dumps(check(sys.argv[1], sys.argv[2])))", "")
    exec(compile(code, "<xattr check>", "exec"), namespace)
    return namespace["check"]


def run_check(cache_dir: str, context: ProbeContext) -> dict[str, Any]:
    """The check's findings, as the service user: here when that is this
    process's user, else in a forked child holding that user's credentials
    (a fork, so the check never depends on that user being able to execute
    this interpreter)."""
    from glance_features._platform import proc

    check = _check_function()
    if context.user is None or context.user == current_user():
        found: dict[str, Any] = check(cache_dir, GLANCE_CHECK_FILE)
        return found
    try:
        found = proc.call_as(
            context.user, check, (cache_dir, GLANCE_CHECK_FILE), context.remaining()
        )
    except (OSError, KeyError, RuntimeError, TimeoutError) as exc:
        # The probe's own failure (no such user, a check that overran): it
        # says nothing about the cache directory.
        why = f"no account named {context.user!r}" if isinstance(exc, KeyError) else exc
        return {"probe_error": f"could not run the check as {context.user}: {why}"}
    return found


def _binding(details: dict[str, Any]) -> str | None:
    """Why Glance's ``import xattr`` and ``xattr.setxattr`` would fail, or None."""
    from glance_features._platform import dists

    spec = dists.find_spec("xattr")
    for dist in ("xattr", "pyxattr"):
        version = dists.version(dist)
        if version is not None and spec is not None:
            details["binding"] = f"{dist} {version}"
            return None  # both provide the setxattr/getxattr functions Glance calls
    details["binding"] = None
    return "the Python xattr binding that Glance's cache driver imports is not installed"


def _explain(
    found: dict[str, Any], cache_dir: str, user: str, details: dict[str, Any]
) -> tuple[str, list[str]]:
    import errno

    number = int(found.get("errno") or 0)
    code = errno.errorcode.get(number, str(number)) if number else "error"
    if number == errno.ENOTSUP:
        code = "EOPNOTSUPP"  # one number on Linux; Glance checks EOPNOTSUPP
    details["errno"] = code
    reason = f"{found.get('step')}: {code} ({found.get('error')})"
    mount = describe_mount(str(found.get("probed_dir") or os.path.dirname(cache_dir)), details)
    point = mount.mount_point if mount else cache_dir
    fs_type = mount.fs_type if mount else "?"
    if number == errno.ENOTSUP:
        fix = ["move image_cache_dir to a file system with user xattrs (ext4, xfs, btrfs)"]
        if fs_type not in ("ramfs", "tmpfs", "proc", "sysfs"):
            fix.insert(
                0, f"mount -o remount,user_xattr {point}  # and add user_xattr in /etc/fstab"
            )
        return (
            f"{fs_type} on {point} does not support user xattrs ({code}): Glance's "
            "xattr driver refuses to configure and Glance falls back to sqlite",
            fix,
        )
    if found.get("stale_check_file") and "check_file_uid" in found:
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
        return (
            f"{reason}: no space or quota left on {point}",
            [f"free space on {point} or raise the quota of {user}"],
        )
    if number in (errno.ENOTDIR, errno.ENOENT):
        return (
            f"{reason}: Glance cannot use {cache_dir} as its cache directory",
            [f"point image_cache_dir at a directory, or remove what is at {cache_dir}"],
        )
    return reason, [f"check {cache_dir} and the file system mounted on {point}"]
