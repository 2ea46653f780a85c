"""Copying a submission folder without following a single link.

Every copy of submitted files (the queue's copy of a local folder, each sandbox run's
snapshot) goes through ``copy_folder``: it walks the source through directory descriptors
(``os.fwalk``) and opens every file with ``O_NOFOLLOW``, so neither a symbolic link at any
depth nor one swapped in while copying is followed; a link, a device or a FIFO anywhere in
the folder is refused with its (shortened) name. The same caps as an uploaded archive hold.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from contextlib import contextmanager
from pathlib import Path

from ..errors import MembenchError
from ..home import process_alive, scratch_dir
from . import safe_text

MAX_FILES = 200
MAX_BYTES = 16 * 1024 * 1024
SKIP = {"__pycache__", ".git", ".ipynb_checkpoints"}


class FolderError(MembenchError):
    """A submission folder that cannot be copied as it is."""


def copy_folder(src, dst, *, max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES) -> Path:
    """Copy regular files and folders of ``src`` into the new folder ``dst``; return ``dst``."""
    src, dst = Path(src), Path(dst)
    try:
        top = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise FolderError(f"submission folder {safe_text.name(str(src), 160)} cannot be opened ({exc.strerror})",
                          "pass a real folder (not a link) holding scorer.py and submission.yaml") from None
    os.close(top)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.mkdir(mode=0o755)
    files = total = 0
    for root, dirs, names, rootfd in os.fwalk(src, follow_symlinks=False):
        rel = Path(root).relative_to(src)
        dirs[:] = [d for d in dirs if d not in SKIP]
        for d in dirs:
            if stat.S_ISLNK(os.stat(d, dir_fd=rootfd, follow_symlinks=False).st_mode):
                raise _link(rel / d)
            (dst / rel / d).mkdir(mode=0o755)
        for name in names:
            st = os.stat(name, dir_fd=rootfd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise _link(rel / name)
            if not stat.S_ISREG(st.st_mode):
                raise FolderError(f"submission file {safe_text.name(str(rel / name))} is not a regular file",
                                  "submit regular files only")
            files += 1
            if files > max_files:
                raise FolderError(f"submission folder holds more than {max_files} files", "submit only the scorer's files")
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=rootfd)
            except OSError as exc:
                raise FolderError(f"submission file {safe_text.name(str(rel / name))} cannot be read "
                                  f"({exc.strerror})") from None
            with os.fdopen(fd, "rb") as fh, open(dst / rel / name, "xb") as out:
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    raise _link(rel / name)
                while chunk := fh.read(1 << 16):
                    total += len(chunk)
                    if total > max_bytes:
                        raise FolderError(f"submission folder holds more than {max_bytes >> 20} MiB",
                                          "submit only the scorer's files")
                    out.write(chunk)
            os.chmod(dst / rel / name, 0o644)
    return dst


def _link(rel) -> FolderError:
    return FolderError(f"submission folder holds a link, {safe_text.name(str(rel))}: links are never followed",
                       "replace it with the file itself (regular files and folders only)")


@contextmanager
def snapshot(src):
    """``with snapshot(folder) as copy:`` a private copy (``copy_folder``) that lives as long
    as the block: what is checked, hashed and run is the same bytes, whatever happens to the
    original meanwhile."""
    dst = scratch_dir("snapshots") / f"snap-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    try:
        yield copy_folder(src, dst / (Path(src).resolve().name or "submission"))
    finally:
        shutil.rmtree(dst, ignore_errors=True)


def sweep_dead(parent: Path) -> int:
    """Remove the folders ``<kind>-<pid>-<random>`` under ``parent`` whose process is gone
    (what a harness killed mid-run left behind); return how many."""
    removed = 0
    for d in Path(parent).glob("*-*-*"):
        pid = d.name.split("-")[1]
        if not pid.isdigit() or process_alive(int(pid)):
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed += not d.exists()
    return removed


