"""Download a gzipped IDX file and keep it only if it is the right one.

The file is streamed into a temporary file in the destination directory,
its *decompressed* payload is hashed, and only a match is renamed into
place. A tampered, truncated or wrong file is deleted and the next mirror
is tried; if none delivers, ``DownloadError`` lists what each one did.
Plain HTTP mirrors are therefore safe to use: the hash, not the transport,
decides what is kept.
"""
import gzip
import hashlib
import http.client
import shutil
import sys
import urllib.request
import zlib
from pathlib import Path

from ..atomic import atomic_path
from .errors import DataError, DownloadError

TIMEOUT_S = 10.0
CHUNK = 1 << 20  # 1 MiB


def fetch_verified(name, dest_dir, mirrors, sha256, size, *, timeout=TIMEOUT_S,
                   verbose=True):
    """Fetch ``<mirror><name>.gz`` into ``dest_dir/<name>.gz``, verified.

    Inputs:
    - name: file name without ".gz", e.g. "train-images-idx3-ubyte".
    - dest_dir: directory to store the file in (created if missing).
    - mirrors: base URLs tried in order (``https://``, ``http://`` or
      ``file://``); a trailing "/" is optional.
    - sha256, size: SHA-256 hex digest and byte count of the decompressed
      file.
    - timeout: seconds per connection attempt.

    Returns the Path of the stored .gz file. Raises ``DownloadError`` when no
    mirror delivered a matching file; nothing is left in ``dest_dir`` then.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{name}.gz"
    failures = []
    for mirror in mirrors:
        url = f"{mirror.rstrip('/')}/{name}.gz"
        if verbose:
            print(f"npcnn: downloading {url}", file=sys.stderr)
        try:
            with atomic_path(dest) as tmp:
                _download(url, tmp, timeout)
                _verify(tmp, sha256, size)
            return dest
        except (OSError, http.client.HTTPException, ValueError) as e:
            # OSError: unreachable, timeout, 404 (URLError, HTTPError);
            # HTTPException: connection cut mid-body; ValueError: bad URL
            # or DataError from _verify.
            failures.append(f"{url}: {e}")
    if not failures:
        raise DownloadError(f"{name}.gz: no mirrors given")
    raise DownloadError(f"{name}.gz: no mirror delivered a verified copy: "
                        + "; ".join(failures))


def _download(url, path, timeout):
    with urllib.request.urlopen(url, timeout=timeout) as response, \
            open(path, "wb") as f:
        shutil.copyfileobj(response, f, CHUNK)


def _verify(path, sha256, size):
    """Hash the decompressed content of ``path``; raise DataError on mismatch.

    Reading stops as soon as the content exceeds ``size``, so a gzip bomb
    or a much larger wrong file costs no more than the real one.
    """
    digest = hashlib.sha256()
    n = 0
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                n += len(chunk)
                if n > size:
                    raise DataError(f"decompressed content exceeds the "
                                    f"expected {size} bytes")
                digest.update(chunk)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"corrupt or truncated gzip stream ({e})") from e
    if n != size:
        raise DataError(f"decompressed content is {n} bytes, expected {size}")
    if digest.hexdigest() != sha256:
        raise DataError(f"SHA-256 of the decompressed content is "
                        f"{digest.hexdigest()}, expected {sha256} "
                        f"(tampered or corrupt download)")
