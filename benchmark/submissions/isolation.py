"""What Linux gives for isolation, as a ``preexec_fn``: namespaces, a read-only view, limits.

In the child, between fork and exec:

1. new mount and network namespaces (``unshare(CLONE_NEWNS | CLONE_NEWNET)``); when not
   root, a user namespace first so that the same works unprivileged. The new network
   namespace has no interfaces up, not even loopback: no connection goes anywhere.
2. hidden paths (MEMBENCH_HOME: the suite with its labels, the queue) are covered by an
   empty read-only tmpfs, so nothing there can be read, whatever its file modes;
3. a new root (chroot) that holds only the system directories, the Python installation, the
   harness package and the working directory, so no other file on the machine (raw data
   with labels, other checkouts, model caches) can even be named;
   every mount is read-only except the working directory and the kernel filesystems
   (/proc, /dev): writes outside the working directory fail with EROFS;
4. resource limits (address space, CPU seconds, processes, open files, file size);
5. when started as root, drop to ``nobody``/``nogroup`` (no supplementary groups), set
   no-new-privileges, and ask for SIGKILL if the harness dies.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from dataclasses import dataclass

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
NOBODY = 65534

_FLAG_NAMES = {
    "ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME,
}
KERNEL_MOUNTS = ("/proc", "/sys", "/dev")


@dataclass(frozen=True)
class Limits:
    """Per-run limits. Memory is address space (RLIMIT_AS), so it counts what is mapped."""

    memory_mb: int = 2048
    cpu_s: int = 300
    wall_s: float = 600.0
    nproc: int = 64
    nofile: int = 128
    fsize_mb: int = 64


_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    return _libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source, target, fstype, flags, data=None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(_c().mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape") if "\\" in field else field


def _mounts() -> list[tuple[str, int]]:
    """(mount point, per-mount flags) from /proc/self/mountinfo."""
    out = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            parts = line.split()
            point = _unescape(parts[4])
            flags = 0
            for opt in parts[5].split(","):
                flags |= _FLAG_NAMES.get(opt, 0)
            out.append((point, flags))
    return out


def _under(path: str, roots) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _blocking_ancestor(path: str) -> str | None:
    """The topmost ancestor of ``path`` that others cannot traverse (mode lacks o+x)."""
    parts = os.path.abspath(path).strip("/").split("/")
    for i in range(1, len(parts) + 1):
        anc = "/" + "/".join(parts[:i])
        try:
            if not os.stat(anc).st_mode & 0o001:
                return anc
        except OSError:
            return None
    return None


def _expose(paths) -> None:
    """Make each of ``paths`` (the Python installation) reachable by the sandbox user when an
    ancestor is private (e.g. a pyenv under /root, mode 700): cover that ancestor with an empty
    tmpfs and bind back only the path itself. The rest of the ancestor stays hidden."""
    plan = []
    for path in paths:
        anc = _blocking_ancestor(path) if os.path.isdir(path) else None
        if anc and anc != os.path.abspath(path):
            plan.append((anc, os.path.abspath(path), os.open(path, os.O_PATH)))
    covered = set()
    for anc, path, fd in plan:
        if anc not in covered:
            _mount("tmpfs", anc, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
            covered.add(anc)
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        os.close(fd)


SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc")


def _build_root(newroot: str, allow, workdir: str) -> None:
    """An empty tmpfs at ``newroot`` holding bind mounts of only what the scorer needs: the
    system directories, the Python installation and the harness package (``allow``), /dev,
    /proc and the working directory, each at its own path."""
    _mount("tmpfs", newroot, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    for path in dict.fromkeys((*SYSTEM_DIRS, *allow)):
        dst = newroot + path
        if os.path.islink(path):  # e.g. /lib -> usr/lib on merged-/usr systems
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if not os.path.lexists(dst):
                os.symlink(os.readlink(path), dst)
            continue
        if not os.path.isdir(path):
            continue
        os.makedirs(dst, exist_ok=True)
        _mount(path, dst, None, MS_BIND | MS_REC)
    for path, flags in (("/dev", MS_BIND | MS_REC), ("/proc", MS_BIND | MS_REC), (workdir, MS_BIND | MS_REC)):
        os.makedirs(newroot + path, exist_ok=True)
        _mount(path, newroot + path, None, flags)


def _set_rlimits(limits: Limits, nproc: bool) -> None:
    # RLIMIT_NPROC counts every process of the real user; unsandboxed, that user is the
    # harness's own, so the limit is left unset there.
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb << 20,) * 2)
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 5))
    if nproc:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.nproc,) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.nofile,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.fsize_mb << 20,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def isolate(
    workdir: str, hidden: tuple[str, ...], limits: Limits, drop_user: bool = True, expose=(),
    newroot: str | None = None,
) -> None:
    """Run in the child before exec. Raises OSError when the kernel refuses a step.

    With ``newroot`` (an empty directory), the process is also confined (chroot) to a root
    that holds only the system directories, ``expose`` (the Python installation and the
    harness package) and its working directory: nothing else on the machine (data, other
    checkouts, caches) exists for it."""
    uid, gid = os.getuid(), os.getgid()
    libc = _c()
    if uid != 0:
        _check(libc.unshare(CLONE_NEWUSER), "unshare user namespace")
        with open("/proc/self/setgroups", "w") as fh:
            fh.write("deny")
        with open("/proc/self/uid_map", "w") as fh:
            fh.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as fh:
            fh.write(f"{gid} {gid} 1")
    _check(libc.unshare(CLONE_NEWNS | CLONE_NEWNET), "unshare mount+network namespaces")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    if uid == 0 and drop_user and newroot is None:
        _expose(expose)
    for path in hidden:
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=000")
    _mount(workdir, workdir, None, MS_BIND | MS_REC)
    keep = (workdir, *hidden)
    kernel = KERNEL_MOUNTS
    if newroot is not None:
        _build_root(newroot, expose, workdir)
        keep += (newroot + workdir,)
        kernel += tuple(newroot + k for k in KERNEL_MOUNTS)
    for point, flags in _mounts():
        if _under(point, keep) or _under(point, kernel) and not point.endswith("/dev/shm"):
            continue
        try:
            _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
        except OSError:
            if point == "/":
                raise
    if newroot is not None:
        os.chroot(newroot)
    # subprocess changed into workdir before this ran: enter it again, through the new
    # writable bind mount rather than the old (now read-only) one.
    os.chdir(workdir)
    _set_rlimits(limits, nproc=True)
    if uid == 0 and drop_user:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl no_new_privs")
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl pdeathsig")


def limits_only(limits: Limits) -> None:
    """The unsandboxed fallback (--allow-unsandboxed): resource limits, nothing else."""
    _set_rlimits(limits, nproc=False)
    _c().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
