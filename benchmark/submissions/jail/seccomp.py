"""The jail's seccomp filter, compiled by libseccomp and handed to ``bwrap --seccomp FD``.

We do not write BPF by hand: libseccomp (``libseccomp.so.2``, the library systemd, Docker
and Flatpak use; Debian package ``libseccomp2``, pulled in by ``python3-seccomp``) compiles
the rules below, called through ctypes so that any Python can build the filter. The filter
is for the native architecture only; a syscall made through another ABI (32-bit ``int 0x80``,
x32) kills the process (libseccomp's bad-architecture action).

Rules (everything else is allowed; the namespaces, the read-only view and the cgroup do the
rest):

- ``socket``/``socketpair`` with any family but ``AF_UNIX``: ``EAFNOSUPPORT`` (no IP, IPv6,
  netlink, packet or ``AF_VSOCK`` socket, whatever namespace it would reach);
- ``clone`` without ``CLONE_THREAD``: ``EPERM`` (threads yes, processes no), ``fork`` and
  ``vfork``: ``EPERM``; ``clone3``: ``ENOSYS``, because its flags live in memory a filter
  cannot read; glibc then falls back to ``clone``, whose flags the filter checks;
- syscalls a scorer never needs and that widen the kernel surface (``ptrace``, ``unshare``,
  ``setns``, ``mount`` and the new mount API, ``bpf``, ``perf_event_open``, ``userfaultfd``,
  ``io_uring_*``, ``keyctl``, module loading, ...): ``EPERM``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
from functools import lru_cache

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_NE, SCMP_CMP_MASKED_EQ = 1, 7
CLONE_THREAD = 0x00010000

DENIED = (
    "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "bpf", "perf_event_open",
    "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl", "add_key",
    "request_key", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "reboot", "swapon", "swapoff", "acct", "quotactl", "open_by_handle_at",
    "name_to_handle_at", "lookup_dcookie", "fanotify_init", "syslog", "iopl", "ioperm",
    "vhangup", "personality",
)


class SeccompUnavailable(Exception):
    """libseccomp is missing or refused to build the filter."""


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def _errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)  # SCMP_ACT_ERRNO(code)


def _lib():
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        raise SeccompUnavailable("libseccomp.so.2 not found (apt-get install libseccomp2 python3-seccomp)") from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


@lru_cache(maxsize=1)
def program() -> bytes:
    """The compiled BPF program (raw ``struct sock_filter`` array), built once per process."""
    lib = _lib()
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        raise SeccompUnavailable("seccomp_init failed")
    try:
        def rule(action, name, *cmps):
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr < 0:  # a syscall this kernel/architecture does not have: nothing to filter
                return
            arr = (_ArgCmp * max(len(cmps), 1))(*cmps)
            rc = lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), arr)
            if rc != 0:
                raise SeccompUnavailable(f"libseccomp refused the rule for {name} ({os.strerror(-rc)})")

        not_unix = _ArgCmp(0, SCMP_CMP_NE, socket.AF_UNIX, 0)
        rule(_errno(errno.EAFNOSUPPORT), "socket", not_unix)
        rule(_errno(errno.EAFNOSUPPORT), "socketpair", not_unix)
        rule(_errno(errno.EPERM), "clone", _ArgCmp(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0))
        rule(_errno(errno.ENOSYS), "clone3")
        for name in DENIED:
            rule(_errno(errno.EPERM), name)
        fd = os.memfd_create("membench-seccomp-export")
        try:
            rc = lib.seccomp_export_bpf(ctx, fd)
            if rc != 0:
                raise SeccompUnavailable(f"seccomp_export_bpf failed ({os.strerror(-rc)})")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


def program_fd() -> int:
    """A fresh memfd holding the program, positioned at its start (bwrap reads it to EOF)."""
    data = program()
    fd = os.memfd_create("membench-seccomp")
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def problem() -> str | None:
    try:
        program()
    except SeccompUnavailable as exc:
        return str(exc)
    return None
