"""Read and write IDX files, the format of MNIST and Fashion-MNIST.

Layout (big-endian), from LeCun's MNIST page::

    byte 0, 1   0x00 0x00
    byte 2      type code: 0x08 unsigned byte (the only one npcnn supports)
    byte 3      number of dimensions, ndim
    4 * ndim    each dimension as an unsigned 32-bit integer
    payload     prod(dims) values, row-major (last dimension fastest)

Images are ``0x00000803, N, 28, 28`` then the pixels; labels are
``0x00000801, N`` then one byte per label.

A file whose name ends in ``.gz`` is gunzipped first; any other file is read
raw. The reader trusts nothing: a wrong magic number, a truncated header or
payload, bytes after the payload, or a broken gzip stream each raise
``DataError`` naming the file and what is wrong, rather than an array of the
wrong shape or a confusing ``reshape`` error three calls later.
"""
import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from .errors import DataError
from .files import readable_file

UNSIGNED_BYTE = 0x08

# The most a file of unknown content may decompress to (MNIST's largest is
# 47 MB). A caller that knows the exact size passes it, as load_mnist does,
# and a gzip bomb then costs no more than the real file: the limit
# downloads have (download._verify).
MAX_BYTES = 1 << 30
CHUNK = 1 << 20

# All type codes the IDX format defines; only UNSIGNED_BYTE is read, the rest
# are named so that the error says "unsupported" rather than "not IDX".
TYPE_NAMES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "16-bit integer",
    0x0C: "32-bit integer",
    0x0D: "32-bit float",
    0x0E: "64-bit float",
}

GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path, max_bytes=MAX_BYTES):
    """Read an IDX file of unsigned bytes (gunzipped first if ``*.gz``).

    Inputs:
    - path: str or Path.
    - max_bytes: the most the (decompressed) file may hold; reading stops
      as soon as it holds more.

    Returns a writable ``np.uint8`` array whose shape is the dimensions in
    the header, e.g. ``(60000, 28, 28)`` for MNIST's training images.

    Raises ``DataError`` (a ``ValueError``) for an empty, truncated or
    corrupt file, an unsupported type code, trailing bytes, more than
    ``max_bytes``, or a path that is missing or not a regular file (a FIFO
    would block); the message starts with the path.
    """
    path = readable_file(path, "IDX file", allow_empty=True)  # "empty file" is the header's to say
    data = _read_bytes(path, max_bytes)
    dims, header_len = parse_header(path, data)
    expected = 1
    for d in dims:
        expected *= d  # Python ints: no overflow for any 32-bit dims
    found = len(data) - header_len
    shape_text = "x".join(map(str, dims))
    if found < expected:
        raise DataError(f"{path}: truncated: header says {shape_text} = {expected} "
                        f"bytes of data, found {found}")
    if found > expected:
        raise DataError(f"{path}: {found - expected} trailing bytes: header says "
                        f"{shape_text} = {expected} bytes of data, found {found}")
    # bytearray -> a writable array without a second copy of the payload.
    return np.frombuffer(bytearray(data), dtype=np.uint8,
                         offset=header_len).reshape(dims)


def write_idx(path, array):
    """Write a ``uint8`` array as an IDX file, gzipped if the name ends in .gz.

    The file is written atomically (a temporary file in the same directory,
    then ``os.replace``), so an interrupted write never leaves a truncated
    file behind. The gzip header stores no timestamp or name, so writing the
    same array twice gives identical bytes.

    Returns the path as a ``Path``.
    """
    path = Path(path)
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"write_idx({path}): only uint8 is written (IDX type 0x08), "
                        f"got {array.dtype}; check the range, then .astype(np.uint8)")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx({path}): IDX holds 1 to 255 dimensions, "
                         f"got {array.ndim}")
    if max(array.shape) >= 2**32:
        raise ValueError(f"write_idx({path}): dimensions {array.shape} do not fit "
                         f"in IDX's unsigned 32-bit header fields")
    header = bytes([0, 0, UNSIGNED_BYTE, array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape)
    payload = np.ascontiguousarray(array).tobytes()
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        if path.name.endswith(".gz"):
            # filename="" and mtime=0: no temporary name or clock in the bytes.
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
                gz.write(header + payload)
        else:
            f.write(header + payload)
    return path


def _read_bytes(path, max_bytes):
    """The decompressed content of ``path``, at most ``max_bytes``; gzip
    failures and anything longer become DataError."""
    if not path.name.endswith(".gz"):
        size = path.stat().st_size
        if size > max_bytes:
            raise DataError(f"{path}: {size} bytes, more than the {max_bytes} expected")
        return path.read_bytes()
    chunks, n = [], 0
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                n += len(chunk)
                if n > max_bytes:
                    raise DataError(f"{path}: decompresses to more than the {max_bytes} bytes "
                                    f"expected (a gzip bomb, or the wrong file)")
                chunks.append(chunk)
        return b"".join(chunks)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        # EOFError: the stream stops mid-way (a cut-off download);
        # BadGzipFile / zlib.error: not gzip, or damaged data.
        raise DataError(f"{path}: corrupt gzip stream ({e})") from e


def parse_header(path, data):
    """Check the magic number and header; return (dims, header length)."""
    if len(data) == 0:
        raise DataError(f"{path}: empty file, expected an IDX header")
    if len(data) < 4:
        raise DataError(f"{path}: truncated: {len(data)} bytes, too short for the "
                        f"4-byte IDX magic number")
    magic = int.from_bytes(data[:4], "big")
    if data[:2] != b"\0\0" or data[2] not in TYPE_NAMES:
        hint = (" (the content is gzip-compressed: name the file *.gz)"
                if data[:2] == GZIP_MAGIC else "")
        raise DataError(f"{path}: not an IDX file: magic number 0x{magic:08x}, expected "
                        f"0x0000 then a type code and a dimension count{hint}")
    if data[2] != UNSIGNED_BYTE:
        raise DataError(f"{path}: unsupported IDX type code 0x{data[2]:02x} "
                        f"({TYPE_NAMES[data[2]]}); only 0x08 (unsigned byte) is supported")
    ndim = data[3]
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"{path}: truncated header: {ndim} dimensions need "
                        f"{header_len} header bytes, found {len(data)}")
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    return dims, header_len
