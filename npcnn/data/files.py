"""Is this path a file npcnn may open and read to the end?

Every loader asks before it opens anything: ``open()`` on a FIFO blocks
until someone writes to it (forever, for a FIFO named ``weights.npz``), a
character device such as ``/dev/zero`` never ends, and a directory fails
with an ``IsADirectoryError`` that does not say which argument was wrong.
The answer is one line that starts with the path.
"""
import os
import stat
from pathlib import Path

from .errors import DataError


def readable_file(path, what="file", allow_empty=False):
    """``Path(path)`` if it names an existing, readable regular file (a
    symbolic link to one counts); otherwise ``DataError`` saying why.

    ``what`` names the kind of file in the message ("checkpoint", "image").
    """
    if path is None or not str(path).strip():
        raise DataError(f"no {what} given (an empty path)")
    if "\0" in str(path):
        raise DataError(f"{str(path)!r}: a path cannot contain a NUL character")
    path = Path(path).expanduser()
    try:
        info = os.stat(path)                      # follows symbolic links
    except FileNotFoundError:
        dangling = os.path.islink(path)
        raise DataError(f"{path}: no such {what}" + (" (a broken symbolic link)" if dangling else "")) \
            from None
    except NotADirectoryError:
        raise DataError(f"{path}: no such {what} (a part of the path is a file, not a folder)") from None
    except OSError as err:                        # permission on a parent, name too long, loops
        raise DataError(f"{path}: cannot be opened: {err.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError(f"{path}: is a folder, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise DataError(f"{path}: is not a regular file (a FIFO, socket or device), "
                        f"and npcnn reads only regular files")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: cannot be read (permission denied)")
    if info.st_size == 0 and not allow_empty:
        raise DataError(f"{path}: is empty (0 bytes), not a {what}")
    return path
