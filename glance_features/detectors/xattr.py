"""xattr: user extended attributes in the image cache, for the xattr cache driver."""

from __future__ import annotations

import errno
import os
import sys

from glance_features import _metadata, _mounts
from glance_features._metadata import find_spec
from glance_features.detector import ProbeContext, result
from glance_features.model import FeatureResult, Status
from glance_features.needs import NEEDS, requirement_name
from glance_features.remedy import pip_install

DEFAULT_CACHE_DIR = "/var/lib/glance/image-cache"
PROBE_ATTRIBUTE = "user.glance-features.probe"
_NO_SUPPORT = {errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}


def _random_hex() -> str:
    # os.urandom, not secrets: the name only has to be unguessable, and
    # secrets would pull hashlib and hmac onto Glance's start-up path.
    return os.urandom(8).hex()


def nearest_existing(path: str) -> str:
    current = os.path.abspath(path)
    while not os.path.isdir(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


class XattrDetector:
    name = "xattr"
    summary = "user extended attributes in image_cache_dir (image_cache_driver = xattr)"

    def probe(self, context: ProbeContext) -> FeatureResult:
        if sys.platform == "win32":
            return result(
                self.name,
                Status.UNAVAILABLE,
                "extended attributes are not supported on Windows",
                {},
                ["use image_cache_driver = centralized_db on Windows"],
            )
        cache_dir = context.settings.image_cache_dir or DEFAULT_CACHE_DIR
        probed = nearest_existing(cache_dir)
        details: dict[str, object] = {
            "image_cache_dir": cache_dir,
            "probed_dir": probed,
            "cache_dir_exists": probed == os.path.abspath(cache_dir),
        }
        mount = _mounts.mount_of(probed)
        if mount is not None:
            details.update(
                mount_point=mount.mount_point,
                fs_type=mount.fs_type,
                mount_source=mount.source,
                mount_options=list(mount.options),
            )
        binding_problem = self._binding(details)
        fs_problem = self._file_system(probed, mount, details)
        where = f"{probed}" + (
            "" if details["cache_dir_exists"] else f" (nearest existing parent of {cache_dir})"
        )
        if fs_problem is not None:
            reason, fix = fs_problem
            return result(self.name, Status.UNAVAILABLE, f"{where}: {reason}", details, fix)
        if binding_problem is not None:
            binding = requirement_name(NEEDS[self.name].python[0])
            return result(
                self.name, Status.UNAVAILABLE, binding_problem, details, [pip_install(binding)]
            )
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
            f"user xattrs work in {where} (xattr {details['binding_version']})",
            details,
        )

    def _binding(self, details: dict[str, object]) -> str | None:
        """Why Glance could not import the binding it uses, or None."""
        details["binding_version"] = _metadata.version("xattr")
        if details["binding_version"] is not None:
            return None
        if find_spec("xattr") is not None and _metadata.version("pyxattr"):
            return (
                "the 'xattr' module here comes from pyxattr, whose API Glance's "
                "cache driver does not use; it needs the xattr distribution"
            )
        return "the Python xattr binding that Glance's cache driver imports is not installed"

    def _file_system(
        self, directory: str, mount: _mounts.Mount | None, details: dict[str, object]
    ) -> tuple[str, list[str]] | None:
        """Create a private probe file, set and read back a user xattr, remove it."""
        path = os.path.join(directory, f".glance-features-probe-{_random_hex()}")
        flags = (
            os.O_WRONLY
            | os.O_CREAT
            | os.O_EXCL
            | getattr(os, "O_NOFOLLOW", 0)
            | getattr(os, "O_CLOEXEC", 0)
        )
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            return _explain(exc, f"cannot create a file in {directory}", directory, mount, details)
        try:
            _set_and_get(fd, path)
        except OSError as exc:
            return _explain(exc, "cannot set a user xattr", directory, mount, details)
        finally:
            os.close(fd)
            try:
                os.unlink(path)
            except OSError:
                pass
        return None


def _set_and_get(fd: int, path: str) -> None:
    value = os.urandom(8)
    if hasattr(os, "setxattr"):
        os.setxattr(fd, PROBE_ATTRIBUTE, value)
        read = os.getxattr(fd, PROBE_ATTRIBUTE)
    else:  # macOS and the BSDs: only the binding reaches the system calls
        import xattr

        attributes = xattr.xattr(fd)
        attributes[PROBE_ATTRIBUTE] = value
        read = attributes[PROBE_ATTRIBUTE]
    if read != value:
        raise OSError(errno.EIO, "the attribute read back differs from the one written")


def _explain(
    exc: OSError,
    doing: str,
    directory: str,
    mount: _mounts.Mount | None,
    details: dict[str, object],
) -> tuple[str, list[str]]:
    # Linux gives ENOTSUP and EOPNOTSUPP one number; Glance checks EOPNOTSUPP.
    if exc.errno in _NO_SUPPORT:
        code = "EOPNOTSUPP"
    else:
        code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    details["errno"] = code
    reason = f"{doing}: {code} ({exc.strerror or exc})"
    point = mount.mount_point if mount else directory
    fs_type = mount.fs_type if mount else "?"
    if exc.errno in _NO_SUPPORT:
        return (
            f"the file system ({fs_type} on {point}) does not support user xattrs: {code}",
            [
                f"mount -o remount,user_xattr {point}  # and add user_xattr to its /etc/fstab line",
                "or move image_cache_dir to a file system with user xattrs (ext4, xfs, btrfs)",
            ],
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (
            f"{reason}: the service user cannot write there",
            [
                f"chown glance:glance {directory}  # the user glance-api runs as",
            ],
        )
    if exc.errno == errno.EROFS:
        return (
            f"{reason}: {point} is mounted read-only",
            [
                f"mount -o remount,rw {point}  # or move image_cache_dir to a writable file system",
            ],
        )
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return (
            f"{reason}: no space or quota left on {point}",
            [
                f"free space on {point} or raise the quota of the glance user",
            ],
        )
    if exc.errno == errno.ELOOP:
        return (f"{reason}: a symbolic link is in the way", [f"remove the link in {directory}"])
    return reason, [f"check {directory} and the file system mounted on {point}"]
