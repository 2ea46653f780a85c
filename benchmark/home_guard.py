"""MEMBENCH_HOME as a private place: who owns its folders, what a link may do, what the jail sees.

``home`` decides every path; this module decides whether a path may be used:

- **Private folders** (``private_dir``): every folder membench makes under MEMBENCH_HOME is
  created with mode 0700 one component at a time, and every component, new or old, is checked
  with ``lstat``: a real folder (never a symbolic link), owned by the current user, writable by
  nobody else. MEMBENCH_HOME itself is checked the same way, and each folder above it must
  belong to root or the current user and be writable by nobody else unless sticky (``/tmp``):
  another local user can neither plant a file nor swap a folder for a link.
- **Secrets** (``read_secret``, ``create_secret``): opened with ``O_NOFOLLOW`` relative to a
  descriptor of the secrets folder (mode 0700, set through that descriptor), created with
  ``O_EXCL`` and mode 0600, and refused unless a regular file of the current user that nobody
  else may read.
- The jail's side of it (MEMBENCH_HOME, the results and the queue never inside a folder the
  sandbox binds) is ``submissions.jail.view.check_outside_jail``, beside what the jail binds.

Every refusal is one ``MembenchError`` naming the folder and the fix.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import MembenchError

PRIVATE = 0o700
_FIX = "point MEMBENCH_HOME at a folder of your own that no other user can write (e.g. ~/.cache/membench)"


def _problem(path: str, st: os.stat_result, *, own: bool = True) -> str | None:
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a folder"
    if own and st.st_uid != os.geteuid():
        return f"belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()})"
    if st.st_mode & 0o022:
        return f"is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def check_root(root: Path) -> Path:
    """MEMBENCH_HOME (created 0700 when missing): a real folder of this user that nobody else
    can write, below folders that only root or this user can change."""
    root = Path(os.path.abspath(root))
    missing = []
    p = root
    while not os.path.lexists(p):
        missing.append(p)
        p = p.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, PRIVATE)
        except FileExistsError:
            pass
    st = os.lstat(root)
    why = _problem(str(root), st)
    if why:
        raise MembenchError(f"MEMBENCH_HOME {root} {why}", _FIX)
    for parent in root.parents:  # followed: a link above is fine when nobody else can change it
        try:
            pst = os.stat(parent)
        except OSError:
            continue
        if pst.st_uid not in (0, os.geteuid()):
            raise MembenchError(f"the folder {parent} above MEMBENCH_HOME belongs to uid {pst.st_uid}", _FIX)
        if pst.st_mode & 0o022 and not pst.st_mode & stat.S_ISVTX:
            raise MembenchError(f"the folder {parent} above MEMBENCH_HOME is writable by other users "
                                f"(mode {stat.S_IMODE(pst.st_mode):o}) and not sticky", _FIX)
    return root


def private_dir(root: Path, *parts: str) -> Path:
    """``root/parts...``, each missing component created with mode 0700, each component checked
    with ``lstat`` (no link, this user's, nobody else may write)."""
    path = Path(root)
    for part in parts:
        for piece in Path(part).parts:
            if piece in ("", ".", "..") or piece.startswith("/"):
                raise MembenchError(f"folder name {piece!r} under MEMBENCH_HOME is not allowed", "use plain names")
            path = path / piece
            try:
                os.mkdir(path, PRIVATE)
            except FileExistsError:
                pass
            why = _problem(str(path), os.lstat(path))
            if why:
                raise MembenchError(f"{path} {why}", "remove it; membench makes its folders itself (mode 0700)")
    return path


def _dir_fd(folder: Path) -> int:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    st = os.fstat(fd)
    why = _problem(str(folder), st)
    if why and "writable" not in why:
        os.close(fd)
        raise MembenchError(f"the secrets folder {folder} {why}", "remove it; membench makes it itself (mode 0700)")
    if stat.S_IMODE(st.st_mode) != PRIVATE:
        os.fchmod(fd, PRIVATE)  # through the descriptor: never a link's target
    return fd


def _secret_name(key: str) -> str:
    name = key.replace("/", "__")
    if name in ("", ".", "..") or "\0" in name:
        raise MembenchError(f"secret key {key!r} is not usable", "use a split id")
    return name


def read_secret(folder: Path, key: str) -> bytes | None:
    """The bytes of secret ``key`` in ``folder``, or None when there is none."""
    dfd = _dir_fd(folder)
    try:
        try:
            fd = os.open(_secret_name(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        except FileNotFoundError:
            return None
        except OSError as exc:  # ELOOP: a link where a secret should be
            raise MembenchError(f"secret {key} under MEMBENCH_HOME cannot be opened ({exc.strerror})",
                                "remove the link; secrets are regular files membench writes itself") from None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
                raise MembenchError(f"secret {key} under MEMBENCH_HOME is not a private file of this user "
                                    f"(mode {stat.S_IMODE(st.st_mode):o}, uid {st.st_uid})",
                                    "remove it; a secret someone else could plant or read is not used")
            return fh.read(1 << 20)
    finally:
        os.close(dfd)


def create_secret(folder: Path, key: str, data: bytes) -> bytes:
    """Write secret ``key`` once (``O_EXCL``, mode 0600); return what is stored (``data``, or the
    secret another process wrote first)."""
    dfd = _dir_fd(folder)
    try:
        try:
            fd = os.open(_secret_name(key), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=dfd)
        except FileExistsError:
            stored = read_secret(folder, key)
            if stored is None:
                raise MembenchError(f"secret {key} vanished while being read", "run the command again") from None
            return stored
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return data
    finally:
        os.close(dfd)
