"""sendfile: zero-copy transfer from a file to a socket."""

from __future__ import annotations

import errno
import os
import sys
from typing import TYPE_CHECKING, BinaryIO

from glance_features.catalog import Entry, GlanceUse
from glance_features.detector import DetectorBase, ProbeContext, result
from glance_features.errors import GlanceFeaturesError
from glance_features.model import JSON, FeatureResult, Status, Verdict
from glance_features.settings import Settings

if TYPE_CHECKING:
    import socket

PAYLOAD_SIZE = 256 * 1024

CATALOG = Entry(
    purpose=(
        "Zero-copy sendfile(2) moves image data from a file to a socket without copying "
        "it through user space. Glance's own HTTP client (glance/common/client.py) used "
        "it until 29.0.0; Glance 29 and later and glance_store do not."
    ),
    verify=("glance-features --feature sendfile",),
    glance=GlanceUse(
        "glance/common/client.py (removed in 29.0.0); glance_store never used it",
        versions="<29",
        unused="no longer calls sendfile (nor does glance_store)",
    ),
)


class PrepareError(GlanceFeaturesError):
    """The check's own set-up failed (a full TMPDIR, say): not sendfile's fault."""


class SendfileDetector(DetectorBase):
    name = "sendfile"
    summary = "zero-copy sendfile(2) from a file to a socket"
    catalog = CATALOG

    def fake(self, status: Status, settings: Settings) -> Verdict:
        return _fake(status, settings)

    def probe(self, context: ProbeContext) -> FeatureResult:
        details: dict[str, object] = {
            "platform": sys.platform,
            "kernel": os.uname().release if hasattr(os, "uname") else "",
            # Glance dropped the unmaintained pysendfile; flag leftovers.
            "pysendfile": _pysendfile(),
        }
        if not hasattr(os, "sendfile"):
            return result(
                self.name,
                Status.UNAVAILABLE,
                f"os.sendfile does not exist on this platform ({sys.platform})",
                details,
                ["none: this platform has no sendfile(2); Glance copies data instead"],
            )
        try:
            sent = transfer(PAYLOAD_SIZE, context.remaining())
        except PrepareError as exc:
            return result(self.name, Status.UNKNOWN, f"could not prepare the check: {exc}", details)
        except TimeoutError as exc:  # an OSError too: it must come first
            return result(self.name, Status.UNKNOWN, str(exc), details)
        except OSError as exc:
            code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
            details["errno"] = code
            return result(
                self.name,
                Status.DEGRADED,
                f"os.sendfile exists but failed: {code}: {exc.strerror or exc}",
                details,
                [
                    "check that the kernel and the file system allow sendfile(2) "
                    "from regular files to sockets"
                ],
            )
        details["bytes_sent"] = sent
        remediation = []
        if details["pysendfile"]:
            remediation.append(
                "pip uninstall pysendfile  # unmaintained since 2014 and unused by Glance"
            )
        return result(
            self.name,
            Status.AVAILABLE,
            f"sent {sent} bytes from a file to a socket with os.sendfile",
            details,
            remediation,
        )


def _anonymous_file() -> BinaryIO:
    """A nameless temporary file: O_TMPFILE where the kernel has it (nothing
    to clean up, even if the process dies), else tempfile's."""
    directory = os.environ.get("TMPDIR") or "/tmp"
    flag = getattr(os, "O_TMPFILE", 0)
    if flag:
        try:
            return open(os.open(directory, flag | os.O_RDWR, 0o600), "w+b")
        except OSError:
            pass
    import tempfile

    return tempfile.TemporaryFile()


def transfer(size: int, timeout: float) -> int:
    """Send ``size`` random bytes from a temporary file over a socket pair and
    check they arrive unchanged. Returns the bytes sent.

    Every wait ends by ``timeout`` (TimeoutError): the sending side is
    non-blocking and waits in select(), so a reader that stops (or never
    starts in time) cannot hold the detector past its deadline.
    """
    from glance_features._platform import green

    socket_, threading_ = green.original("socket"), green.original("threading")
    clock = green.original("time")
    deadline = clock.monotonic() + timeout
    payload = os.urandom(size)
    received = bytearray()
    stalled: list[bool] = []
    try:
        source = _anonymous_file()
        source.write(payload)
        source.flush()
        sender, receiver = socket_.socketpair()
    except OSError as exc:
        raise PrepareError(f"{exc.strerror or exc} (TMPDIR and socketpair)") from None
    with source, sender, receiver:
        sender.setblocking(False)
        receiver.settimeout(max(timeout, 0.001))

        def drain() -> None:
            try:
                while len(received) < size:
                    chunk = receiver.recv(65536)
                    if not chunk:
                        break
                    received.extend(chunk)
            except (TimeoutError, BlockingIOError):
                stalled.append(True)
            except OSError:
                pass

        reader = threading_.Thread(target=drain, daemon=True)
        reader.start()
        try:
            offset = _send(sender, source.fileno(), size, deadline, timeout)
        finally:
            # End of stream for the reader, also when sendfile failed, so
            # its thread ends now instead of at its timeout.
            try:
                sender.shutdown(socket_.SHUT_WR)
            except OSError:
                pass
            reader.join(max(0.0, deadline - clock.monotonic()))
        if reader.is_alive() or stalled:
            raise TimeoutError(f"sendfile transfer did not finish within {timeout:g} s")
    if bytes(received) != payload:
        raise OSError(errno.EIO, f"received {len(received)} bytes that differ from those sent")
    return offset


def _send(sender: socket.socket, source: int, size: int, deadline: float, timeout: float) -> int:
    """``os.sendfile`` from ``source`` to the non-blocking ``sender`` until all
    ``size`` bytes are sent or the deadline; the bytes sent."""
    from glance_features._platform import green

    select_, clock = green.original("select"), green.original("time")
    offset = 0
    while offset < size:
        left = deadline - clock.monotonic()
        if left <= 0:
            raise TimeoutError(f"sendfile transfer did not finish within {timeout:g} s")
        try:
            # Linux and the BSDs/macOS share this positional form; on the
            # BSDs a short count is normal: loop until all is sent.
            n = os.sendfile(sender.fileno(), source, offset, size - offset)
        except BlockingIOError:
            select_.select([], [sender], [], left)
            continue
        if n == 0:
            break
        offset += n
    return offset


def _pysendfile() -> str | None:
    from glance_features._platform import dists

    return dists.version("pysendfile")


def _fake(status: Status, settings: Settings) -> Verdict:
    """What this detector says in ``status`` on the fake host, for test doubles."""
    from glance_features import fake_host

    details: dict[str, JSON] = {"platform": "linux", "kernel": fake_host.KERNEL, "pysendfile": None}
    if status is Status.UNAVAILABLE:
        details["platform"] = "sunos5"
        return Verdict(
            status,
            "os.sendfile does not exist on this platform (sunos5)",
            details,
            ["none: this platform has no sendfile(2); Glance copies data instead"],
        )
    if status is Status.DEGRADED:
        details["errno"] = "EINVAL"
        return Verdict(
            status,
            "os.sendfile exists but failed: EINVAL: Invalid argument",
            details,
            [
                "check that the kernel and the file system allow sendfile(2) "
                "from regular files to sockets"
            ],
        )
    details["bytes_sent"] = 262144
    return Verdict(
        status, "sent 262144 bytes from a file to a socket with os.sendfile", details, []
    )
