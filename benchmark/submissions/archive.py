"""Safe extraction of an uploaded submission (zip or tar, optionally gzip/bz2/xz compressed).

A compressed tar is first decompressed through a byte-capped reader (``MAX_TAR`` bytes), so
nothing downstream (tar headers, GNU long names, pax records) ever sees more than that;
zip members are decompressed through the same running budget. Refused, before anything is
written: absolute paths, ``..`` components, names longer than ``MAX_NAME`` characters or
deeper than ``MAX_DEPTH`` folders, symlinks, hard links, devices and FIFOs, more than
``MAX_FILES`` members, and more than ``MAX_TOTAL`` bytes once decompressed (counted while
extracting, so lying headers do not help a decompression bomb). Every refusal, whatever the
archive library raised, is one ``ArchiveError`` (an HTTP 400) whose message names the member
shortened to a few dozen characters. The result is a folder holding ``scorer.py`` and
``submission.yaml``, either at the archive's root or inside its single top-level folder.
"""

from __future__ import annotations

import bz2
import io
import lzma
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ..errors import MembenchError
from .safe_text import name as shown

MAX_UPLOAD = 2 * 1024 * 1024  # bytes of archive accepted
MAX_TOTAL = 16 * 1024 * 1024  # bytes once extracted
MAX_FILES = 200
MAX_RATIO = 200  # extracted/compressed size ratio above which a member is refused
MAX_TAR = MAX_TOTAL + 4 * 1024 * 1024  # a decompressed tar stream: contents plus headers
MAX_NAME = 512  # characters in a member's path
MAX_DEPTH = 16  # folders in a member's path
REQUIRED = ("scorer.py", "submission.yaml")


class ArchiveError(MembenchError):
    """An upload that is refused; the message says why."""


def _safe_name(name: str) -> PurePosixPath:
    if not name or "\x00" in name:
        raise ArchiveError(f"archive member {shown(name)} has an invalid name")
    if len(name) > MAX_NAME:
        raise ArchiveError(f"archive member {shown(name)} has a name of {len(name)} characters (limit {MAX_NAME})")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"archive member {shown(name)} has an absolute path", "pack paths relative to the folder")
    path = PurePosixPath(name.replace("\\", "/"))
    if any(part == ".." for part in path.parts):
        raise ArchiveError(f"archive member {shown(name)} leaves the folder (..)", "pack paths relative to the folder")
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        raise ArchiveError(f"archive member {shown(name)} has an invalid name")
    if len(parts) > MAX_DEPTH or any(len(p.encode()) > 255 for p in parts):
        raise ArchiveError(f"archive member {shown(name)} is nested deeper than {MAX_DEPTH} folders "
                           "or has a name part over 255 bytes")
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
                        f"archive member {shown(name)} expands more than {MAX_RATIO}x (refused as a decompression bomb)"
                    )
                out.write(chunk)


def _extract_zip(data: bytes, dest: Path) -> None:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"upload is not a valid zip archive ({shown(str(exc), 120)})") from None
    infos = zf.infolist()
    if len(infos) > MAX_FILES:
        raise ArchiveError(f"archive holds {len(infos)} members; the limit is {MAX_FILES}")
    plan = []
    for info in infos:
        rel = _safe_name(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ArchiveError(f"archive member {shown(info.filename)} is a symbolic link", "pack regular files only")
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: no type recorded
            raise ArchiveError(f"archive member {shown(info.filename)} is not a regular file")
        if info.file_size > MAX_TOTAL:
            raise ArchiveError(f"archive member {shown(info.filename)} declares {info.file_size} bytes (refused as a decompression bomb)")
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
            raise ArchiveError(f"archive member {shown(info.filename)} is corrupt or unsupported "
                               f"({type(exc).__name__})") from None


def _decompress(data: bytes) -> bytes:
    """A tar stream, decompressed (gzip, bz2 or xz) through a reader that stops at ``MAX_TAR``
    bytes: each call may return at most the room left, so output past the cap is never made."""
    if data[:2] == b"\x1f\x8b":
        make, limited = (lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)), (lambda d, b, n: d.decompress(b, n))
    elif data[:3] == b"BZh":
        make, limited = bz2.BZ2Decompressor, (lambda d, b, n: d.decompress(b, max_length=n))
    elif data[:6] == b"\xfd7zXZ\x00":
        make, limited = lzma.LZMADecompressor, (lambda d, b, n: d.decompress(b, max_length=n))
    else:
        return data
    out, rest = bytearray(), data
    while rest:  # one pass per compressed stream (gzip allows several in a row)
        d = make()
        out += limited(d, rest, MAX_TAR + 1 - len(out))
        if len(out) > MAX_TAR:
            raise ArchiveError(f"archive expands past {MAX_TAR >> 20} MiB (refused as a decompression bomb)",
                               "submit only the scorer folder")
        if not d.eof:
            break  # a truncated stream: the tar reader says so
        rest = d.unused_data
    return bytes(out)


def _extract_tar(data: bytes, dest: Path) -> None:
    try:
        tf = tarfile.open(fileobj=io.BytesIO(_decompress(data)), mode="r:")
    except ArchiveError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError, ValueError) as exc:
        raise ArchiveError(f"upload is not a valid zip or tar archive ({type(exc).__name__})") from None
    budget = _Budget()
    count = 0
    try:
        for member in tf:  # streamed: headers are read (and decompressed) one at a time
            count += 1
            if count > MAX_FILES:
                raise ArchiveError(f"archive holds more than {MAX_FILES} members")
            rel = _safe_name(member.name)
            if member.issym() or member.islnk():
                raise ArchiveError(f"archive member {shown(member.name)} is a link", "pack regular files only")
            if not (member.isfile() or member.isdir()):
                raise ArchiveError(f"archive member {shown(member.name)} is not a regular file or folder")
            if member.size > MAX_TOTAL:
                raise ArchiveError(f"archive member {shown(member.name)} declares {member.size} bytes (refused as a decompression bomb)")
            target = dest / rel
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            budget.copy(tf.extractfile(member), target, member.name)  # raises past MAX_TOTAL
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ArchiveError(f"archive is corrupt ({type(exc).__name__}: {shown(str(exc), 120)})") from None


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
    except ArchiveError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except Exception as exc:  # noqa: BLE001  (whatever a hostile archive makes a library raise: a 400)
        shutil.rmtree(dest, ignore_errors=True)
        raise ArchiveError(f"archive could not be extracted ({type(exc).__name__})",
                           "send a zip or tar of the submission folder") from None
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
