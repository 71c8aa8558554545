"""Write a file so that readers see either the old one or the new one, never
half of one: write a temporary file in the same directory, then ``os.replace``
it into place (atomic on POSIX and Windows when both are on one filesystem,
which the same directory guarantees)."""
import contextlib
import errno
import os
import secrets
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on normal exit move it to
    ``path``, on any exception (Ctrl-C included) delete it.

    The caller creates and writes the temporary file itself. Its name starts
    with a dot and ends in ``.part`` so that a crash leaves an obvious orphan
    rather than a plausible-looking data file. A missing folder, a folder at
    ``path`` or a read-only file there raise before anything is written,
    naming ``path``.
    """
    path = Path(path)
    # found before writing, and named by the target (the temporary name means nothing to a caller)
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"cannot write {path}: no folder {path.parent}", str(path))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"cannot write {path}: it is a folder", str(path))
    if path.exists() and not os.access(path, os.W_OK):   # os.replace would replace it all the same
        raise PermissionError(errno.EACCES, f"cannot write {path}: the file is read-only", str(path))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text, encoding="utf-8"):
    """``Path(path).write_text(text)``, atomically: readers never see half of it."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding=encoding)
    return Path(path)
