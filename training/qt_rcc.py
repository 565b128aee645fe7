"""Read the files inside a Qt resource bundle (``.rcc``, what ``rcc --binary`` writes).

Some Debian packages ship their sounds only inside such bundles (gcompris-qt-data's
``/usr/share/gcompris-qt/rcc/*.rcc``). This reads them; it never writes one.

The format (Qt's ``rcc.cpp`` and ``qresource.cpp``), every integer big-endian:

- header: ``b"qres"``, u32 version (1-3), u32 offsets of the tree, the data and the names;
  from version 3, u32 flags.
- names: per name, u16 length in UTF-16 code units, u32 hash, the name in UTF-16BE.
- tree: nodes of 14 bytes (22 from version 2: a u64 modification time follows); node 0 is
  the root. A node is u32 name offset and u16 flags, then for a directory u32 child count
  and u32 index of its first child, for a file u16 territory, u16 language and u32 data
  offset.
- data: per file, u32 size and that many bytes. A zlib-compressed file (flag 1) holds the
  uncompressed size (u32) and then a zlib stream; a zstd-compressed one (flag 4) is a zstd
  frame.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"qres"
COMPRESSED, DIRECTORY, COMPRESSED_ZSTD = 0x1, 0x2, 0x4


class RccError(ValueError):
    """A bundle that is not a Qt resource bundle this reader understands, or a damaged one."""


@dataclass(frozen=True)
class Resource:
    path: str   # "dir/sub/file.ogg", without the leading ":/"
    flags: int  # COMPRESSED, COMPRESSED_ZSTD or 0
    offset: int  # of its size field, from the start of the bundle


def _u32(blob: bytes, at: int) -> int:
    return struct.unpack_from(">I", blob, at)[0]


def resources(blob: bytes) -> dict[str, Resource]:
    """Every file in the bundle ``blob``, by its path."""
    if blob[:4] != MAGIC or len(blob) < 20:
        raise RccError("not a Qt resource bundle (no 'qres' header)")
    version, tree, data, names = struct.unpack_from(">IIII", blob, 4)
    if version not in (1, 2, 3):
        raise RccError(f"Qt resource bundle version {version}; this reader knows 1-3")
    node_size = 14 if version == 1 else 22

    def name(offset: int) -> str:
        length = struct.unpack_from(">H", blob, names + offset)[0]
        start = names + offset + 6  # after the length and the hash
        return blob[start:start + 2 * length].decode("utf-16-be")

    out: dict[str, Resource] = {}
    pending = [(0, "")]  # (node index, its parent's path)
    while pending:
        index, parent = pending.pop()
        at = tree + index * node_size
        try:
            name_offset, flags = struct.unpack_from(">IH", blob, at)
            path = f"{parent}/{name(name_offset)}".lstrip("/") if index else ""
            if flags & DIRECTORY:
                count, first = struct.unpack_from(">II", blob, at + 6)
                if first <= index and count:
                    raise RccError(f"{path or 'root'}: a directory whose children come before it")
                pending.extend((child, path) for child in range(first, first + count))
            else:
                out[path] = Resource(path, flags & (COMPRESSED | COMPRESSED_ZSTD), data + _u32(blob, at + 10))
        except (struct.error, UnicodeDecodeError) as exc:
            raise RccError(f"damaged resource tree at node {index}: {exc}") from None
    return out


def read(blob: bytes, resource: Resource) -> bytes:
    """The contents of ``resource``, decompressed."""
    size = _u32(blob, resource.offset)
    raw = blob[resource.offset + 4:resource.offset + 4 + size]
    if len(raw) != size:
        raise RccError(f"{resource.path}: its data runs past the end of the bundle")
    if resource.flags & COMPRESSED:
        try:
            out = zlib.decompress(raw[4:])
        except zlib.error as exc:
            raise RccError(f"{resource.path}: bad zlib data ({exc})") from None
        if len(out) != _u32(raw, 0):
            raise RccError(f"{resource.path}: {len(out)} bytes decompressed, the bundle says {_u32(raw, 0)}")
        return out
    if resource.flags & COMPRESSED_ZSTD:
        try:
            import zstandard  # not in the standard library before Python 3.14
        except ImportError:
            raise RccError(f"{resource.path} is zstd-compressed: pip install zstandard to read it") from None
        return zstandard.ZstdDecompressor().decompress(raw, max_output_size=1 << 30)
    return raw


def extract(bundle: Path, path: str, to: Path) -> Path:
    """Write the file ``path`` of ``bundle`` to ``to`` and return ``to``."""
    blob = bundle.read_bytes()
    found = resources(blob).get(path.lstrip(":/"))
    if found is None:
        raise RccError(f"{bundle}: no resource {path}")
    to.parent.mkdir(parents=True, exist_ok=True)
    to.write_bytes(read(blob, found))
    return to
