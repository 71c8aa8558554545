"""Paths given to the ``npcnn`` commands, checked before any work starts.

Each of ``input_file``, ``input_dir``, ``output_file`` and ``output_dir``
takes the text of an argument and returns a ``Path`` or raises
``BadArgument`` (argparse then prints "argument --out: ..."). They are
argparse ``type=`` callables and plain functions alike::

    p.add_argument("--checkpoint", type=input_file, required=True)
    p.add_argument("--image", type=functools.partial(input_file, what="image"))
    p.add_argument("--out", type=output_dir, required=True)

Checking is not creating: ``output_dir`` creates nothing, so a run refused
later (a corrupt checkpoint, a digit absent from the test set) leaves no
empty folder behind. The command creates the folder right before it
writes, with ``writing_into``, which also removes it again if the writing
fails before anything is in it.
"""
import contextlib
import os
import stat
from pathlib import Path

from npcnn.data.errors import DataError
from npcnn.data.files import readable_file

from .arguments import BadArgument


def input_file(text, what="file", suffixes=None):
    """An existing, readable, non-empty regular file (no folder, FIFO or
    device: those would fail late or block forever); with ``suffixes``
    (e.g. ``(".png", ".jpg")``), one whose name ends in one of them."""
    try:
        path = readable_file(text, what)
    except DataError as err:
        raise BadArgument(str(err)) from None
    if suffixes and path.suffix.lower() not in suffixes:
        raise BadArgument(f"{path}: expected a {' or '.join(suffixes)} {what}")
    return path


def input_dir(text, what="folder"):
    """An existing folder whose entries can be listed."""
    path = _non_empty(text, what)
    mode = _mode(path)
    if mode is None:
        raise BadArgument(f"{path}: no such {what}")
    if not stat.S_ISDIR(mode):
        raise BadArgument(f"{path}: is a file, not a {what}")
    if not os.access(path, os.R_OK | os.X_OK):
        raise BadArgument(f"{path}: cannot be read (permission denied)")
    return path


def output_dir(text):
    """A folder that exists and is writable, or can be created: the
    nearest existing folder above it is writable and nothing in the way is
    a file. Creates nothing."""
    path = _non_empty(text, "output folder")
    mode = _mode(path)
    if mode is not None:
        if not stat.S_ISDIR(mode):
            raise BadArgument(f"{path}: exists and is not a folder")
        _writable(path, path)
        return path
    if os.path.islink(path):
        raise BadArgument(f"{path}: is a symbolic link to nothing (broken, or a loop)")
    _writable(_nearest_existing(path), path)
    return path


def output_file(text):
    """A file that may be written: not an existing folder, FIFO or device,
    in an existing, writable folder (the run must not fail after hours of
    work because of its last step)."""
    path = _non_empty(text, "output file")
    if str(text).endswith(("/", os.sep)):
        raise BadArgument(f"{path}: names a folder; give a file name")
    mode = _mode(path)
    if mode is not None and stat.S_ISDIR(mode):
        raise BadArgument(f"{path}: is an existing folder; give a file name")
    if mode is not None and not stat.S_ISREG(mode):
        raise BadArgument(f"{path}: exists and is not a regular file (a FIFO, socket or device)")
    folder = path.parent
    folder_mode = _mode(folder)
    if folder_mode is None or not stat.S_ISDIR(folder_mode):
        raise BadArgument(f"output folder {folder} does not exist" if folder_mode is None else
                          f"output folder {folder} is a file, not a folder")
    _writable(folder, path)
    return path


@contextlib.contextmanager
def writing_into(folder):
    """Create ``folder`` (and missing parents) for the block; if the block
    fails (Ctrl-C included), remove again the folders it created that are
    still empty. Folders that existed before are never touched."""
    folder = Path(folder)
    created = []
    for missing in reversed([folder, *folder.parents]):
        if not missing.exists():
            created.append(missing)
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:                    # /proc, a full disk: found only by trying
            raise ValueError(f"{folder}: cannot create the folder: {err.strerror}") from None
        yield folder
    except BaseException:
        for made in reversed(created):            # deepest first
            with contextlib.suppress(OSError):    # not empty: keep what was written
                made.rmdir()
        raise


def _non_empty(text, what):
    if text is None or not str(text).strip():
        raise BadArgument(f"no {what} given (an empty path)")
    if "\0" in str(text):
        raise BadArgument(f"{str(text)!r}: a path cannot contain a NUL character")
    return Path(text).expanduser()


def _nearest_existing(path):
    """The deepest existing folder above ``path`` (a file there is an error)."""
    for parent in Path(os.path.abspath(path)).parents:
        mode = _mode(parent)
        if mode is not None:
            if not stat.S_ISDIR(mode):
                raise BadArgument(f"{path}: cannot be created: {parent} is a file, not a folder")
            return parent
    return Path("/")


def _mode(path):
    """``st_mode`` of what ``path`` names (links followed), None when
    nothing is there; any other failure (a name too long, a link loop,
    a folder we may not enter) is the argument's error."""
    try:
        return os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        raise BadArgument(f"{path}: cannot be used: {err.strerror}") from None


def _writable(folder, path):
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadArgument(f"{path}: cannot be written: {folder} is not writable")
