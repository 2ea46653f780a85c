"""Start bwrap as a run's own uid, with the folders it binds made reachable for that uid.

Run by the harness (as root) as ``python -S -s -B launch.py CONFIG``, a fresh single-threaded
process, so nothing here happens between fork and exec of a threaded harness. It:

1. enters a mount namespace of its own (private propagation: nothing reaches the host);
2. mounts a small tmpfs on ``/tmp`` there and stages, read-only, each folder the sandbox will
   see (the Python installation, the allowed libraries, the interface view, the submission
   snapshot) at ``/tmp/stage/<n>``: as an overlay with that folder as its only lower layer, so
   the sandbox's mount table (``/proc/self/mountinfo``) names no host folder (a bind mount's
   root field would: MEMBENCH_HOME, the checkout, the virtual environment), or, without
   overlayfs, as a bind mount; a single file is copied. The run's uid could not walk to them
   where they are (a Python under ``/root``, a MEMBENCH_HOME under a private home);
3. drops to the run's uid and gid (no supplementary groups) and executes ``bwrap``, which
   builds the sandbox from ``/tmp/stage`` as an unprivileged user.

Standard library only (it runs before anything else is imported).
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
STAGE = "/tmp/stage"
EMPTY = "/tmp/empty"


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def main(config: dict) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

    def mount(src, dst, fstype, flags, data=None):
        enc = lambda s: None if s is None else s.encode()  # noqa: E731
        _check(libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)), f"mount {dst}")

    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    # Hold every source before /tmp is covered (a source may live under /tmp).
    held = [(os.open(src, (os.O_PATH if os.path.isdir(src) else os.O_RDONLY) | os.O_CLOEXEC), os.path.isdir(src))
            for src in config["sources"]]
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0755")
    os.mkdir(STAGE, 0o755)
    os.mkdir(EMPTY, 0o755)
    empty = os.open(EMPTY, os.O_PATH | os.O_CLOEXEC)
    for i, (fd, is_dir) in enumerate(held):
        dst = f"{STAGE}/{i}"
        if is_dir:
            # A read-only overlay of the folder: its mount shows no host path (a bind mount's
            # root field would name the folder where it lies on the host).
            os.mkdir(dst, 0o755)
            try:
                mount("overlay", dst, "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV,
                      f"lowerdir=/proc/self/fd/{fd}:/proc/self/fd/{empty}")
            except OSError:  # no overlayfs here: a bind mount (its root field names the host folder)
                mount(f"/proc/self/fd/{fd}", dst, None, MS_BIND | MS_REC)
                mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        else:  # a single file (a module of the interface): a copy on the tmpfs, read-only for the run
            with os.fdopen(os.dup(fd), "rb") as src, open(dst, "xb") as out:
                out.write(src.read())
            os.chmod(dst, 0o444)
        os.close(fd)
    os.close(empty)
    uid = int(config["uid"])
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    os.chdir("/")
    os.execve(config["argv"][0], config["argv"], config["env"])


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
