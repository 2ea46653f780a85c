"""Safe extraction of an uploaded submission (zip or tar, optionally gzip/bz2/xz compressed).

Refused, before anything is written: absolute paths, ``..`` components, symlinks, hard links,
devices and FIFOs, more than ``MAX_FILES`` members, and more than ``MAX_TOTAL`` bytes once
decompressed (counted while extracting, so lying headers do not help a decompression bomb).
The result is a folder holding ``scorer.py`` and ``submission.yaml``, either at the archive's
root or inside its single top-level folder.
"""

from __future__ import annotations

import io
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ..errors import MembenchError

MAX_UPLOAD = 2 * 1024 * 1024  # bytes of archive accepted
MAX_TOTAL = 16 * 1024 * 1024  # bytes once extracted
MAX_FILES = 200
MAX_RATIO = 200  # extracted/compressed size ratio above which a member is refused
REQUIRED = ("scorer.py", "submission.yaml")


class ArchiveError(MembenchError):
    """An upload that is refused; the message says why."""


def _safe_name(name: str) -> PurePosixPath:
    if not name or "\x00" in name:
        raise ArchiveError(f"archive member {name!r} has an invalid name")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"archive member {name!r} has an absolute path", "pack paths relative to the folder")
    path = PurePosixPath(name.replace("\\", "/"))
    if any(part == ".." for part in path.parts):
        raise ArchiveError(f"archive member {name!r} leaves the folder (..)", "pack paths relative to the folder")
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        raise ArchiveError(f"archive member {name!r} has an invalid name")
    return PurePosixPath(*parts)


class _Budget:
    def __init__(self):
        self.total = 0

    def copy(self, src, dst_path: Path, name: str, limit_ratio_base: int | None = None) -> None:
        written = 0
        with open(dst_path, "wb") as out:
            while chunk := src.read(1 << 16):
                written += len(chunk)
                self.total += len(chunk)
                if self.total > MAX_TOTAL:
                    raise ArchiveError(
                        f"archive expands past {MAX_TOTAL >> 20} MiB (refused as a decompression bomb)",
                        "submit only the scorer folder",
                    )
                if limit_ratio_base is not None and written > 1 << 20 and written > MAX_RATIO * max(limit_ratio_base, 1):
                    raise ArchiveError(
                        f"archive member {name!r} expands more than {MAX_RATIO}x (refused as a decompression bomb)"
                    )
                out.write(chunk)


def _extract_zip(data: bytes, dest: Path) -> None:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"upload is not a valid zip archive ({exc})") from None
    infos = zf.infolist()
    if len(infos) > MAX_FILES:
        raise ArchiveError(f"archive holds {len(infos)} members; the limit is {MAX_FILES}")
    plan = []
    for info in infos:
        rel = _safe_name(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ArchiveError(f"archive member {info.filename!r} is a symbolic link", "pack regular files only")
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: no type recorded
            raise ArchiveError(f"archive member {info.filename!r} is not a regular file")
        if info.file_size > MAX_TOTAL:
            raise ArchiveError(f"archive member {info.filename!r} declares {info.file_size} bytes (refused as a decompression bomb)")
        plan.append((info, rel))
    budget = _Budget()
    for info, rel in plan:
        target = dest / rel
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with zf.open(info) as src:
                budget.copy(src, target, info.filename, info.compress_size)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise ArchiveError(f"archive member {info.filename!r} is corrupt or unsupported ({exc})") from None


def _extract_tar(data: bytes, dest: Path) -> None:
    try:
        tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"upload is not a valid zip or tar archive ({exc})") from None
    budget = _Budget()
    count = 0
    try:
        for member in tf:  # streamed: headers are read (and decompressed) one at a time
            count += 1
            if count > MAX_FILES:
                raise ArchiveError(f"archive holds more than {MAX_FILES} members")
            rel = _safe_name(member.name)
            if member.issym() or member.islnk():
                raise ArchiveError(f"archive member {member.name!r} is a link", "pack regular files only")
            if not (member.isfile() or member.isdir()):
                raise ArchiveError(f"archive member {member.name!r} is not a regular file or folder")
            if member.size > MAX_TOTAL:
                raise ArchiveError(f"archive member {member.name!r} declares {member.size} bytes (refused as a decompression bomb)")
            target = dest / rel
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            budget.copy(tf.extractfile(member), target, member.name)  # raises past MAX_TOTAL
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ArchiveError(f"archive is corrupt ({exc})") from None


def extract(data: bytes, dest: Path) -> Path:
    """Extract ``data`` (zip or tar bytes) into the new folder ``dest``; return the submission
    folder inside it. On any refusal ``dest`` is removed and ``ArchiveError`` raised."""
    if len(data) > MAX_UPLOAD:
        raise ArchiveError(f"upload of {len(data)} bytes exceeds the {MAX_UPLOAD >> 20} MiB limit")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=False)
    try:
        if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            _extract_zip(data, dest)
        else:
            _extract_tar(data, dest)
        root = dest
        entries = [p for p in dest.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
        if not all((dest / r).is_file() for r in REQUIRED) and len(entries) == 1 and entries[0].is_dir():
            root = entries[0]
        missing = [r for r in REQUIRED if not (root / r).is_file()]
        if missing:
            raise ArchiveError(
                f"archive has no {' or '.join(missing)} at its root or in its single folder",
                "zip the submission folder itself (scorer.py + submission.yaml)",
            )
        return root
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
