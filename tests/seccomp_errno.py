"""Run a command whose setxattr calls fail with a chosen errno: fault injection.

``python seccomp_errno.py EPERM -- COMMAND ARGS...`` installs a seccomp filter
(inherited by every child, kept across execve and setuid) that makes
``setxattr``, ``lsetxattr``, ``fsetxattr`` and ``setxattrat`` return the errno,
then executes the command. The kernel itself answers the calls, as it does
for a service under systemd's ``SystemCallFilter=`` with
``SystemCallErrorNumber=`` or a container's seccomp profile: every program
under it, the probe and Glance alike, meets the same refusal.

Linux on x86_64 and aarch64 only (the syscall numbers are the architecture's).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
# struct seccomp_data: nr at offset 0, arch at offset 4.
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_RET_K = 0x06

# arch: (AUDIT_ARCH_*, setxattr, lsetxattr, fsetxattr, setxattrat)
ARCHES = {
    "x86_64": (0xC000003E, (188, 189, 190, 463)),
    "aarch64": (0xC00000B7, (5, 6, 7, 463)),
}


def supported() -> bool:
    return sys.platform == "linux" and platform.machine() in ARCHES


def _program(number: int) -> bytes:
    audit_arch, calls = ARCHES[platform.machine()]
    refuse = SECCOMP_RET_ERRNO | (number & 0xFFFF)
    # Instructions: (code, jump if true, jump if false, k); jumps are relative.
    insns = [
        (BPF_LD_W_ABS, 0, 0, 4),  # the architecture: another one's numbers differ
        (BPF_JEQ_K, 1, 0, audit_arch),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        (BPF_LD_W_ABS, 0, 0, 0),  # the syscall number
    ]
    for i, call in enumerate(calls):
        # The refusal is the last instruction: after the remaining tests and the allow.
        insns.append((BPF_JEQ_K, len(calls) - i, 0, call))
    insns += [(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW), (BPF_RET_K, 0, 0, refuse)]
    return b"".join(struct.pack("=HBBI", *insn) for insn in insns)


def install(number: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    code = _program(number)
    filters = ctypes.create_string_buffer(code, len(code))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = SockFprog(len(code) // 8, ctypes.addressof(filters))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def main(argv: list[str]) -> None:
    name, separator, *command = argv
    assert separator == "--" and command, "usage: seccomp_errno.py ERRNO -- COMMAND..."
    install(getattr(errno, name))
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
