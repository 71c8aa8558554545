"""What is checked of a weight file before a byte of its arrays is used: its
size as a zip archive (an ``.npz`` or a torch ``.pt`` both are) and the
JSON metadata npcnn's own ``.npz`` carries. Every failure is a ValueError
that starts with the file's path."""
import json
import zipfile

import numpy as np

from .data.files import readable_file

# The most a weight file may expand to in memory: VGG16 in float64 is 1.1 GB.
# A zip states each member's size before anything is read, so a few-KB file
# claiming gigabytes is refused unread.
MAX_WEIGHT_BYTES = 2 << 30


def check_archive(path, zip_required=False):
    """Refuse a file larger than ``MAX_WEIGHT_BYTES``, or a zip whose members
    claim more in all (a zip bomb), before anything is read. With
    ``zip_required`` (an ``.npz``), a file that is no zip is refused too: np.load
    would take it for a pickle and suggest loading it unsafely."""
    size = path.stat().st_size
    if size > MAX_WEIGHT_BYTES:
        raise ValueError(f"{path}: {size:,} bytes, more than the {MAX_WEIGHT_BYTES:,} of any network "
                         f"npcnn builds")
    if not zipfile.is_zipfile(path):
        if zip_required:
            raise ValueError(f"{path}: not an .npz file (an .npz is a zip archive of arrays)")
        return                                   # torch's legacy format: torch reads it as it is
    try:
        with zipfile.ZipFile(path) as archive:
            claimed = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ValueError(f"{path}: a damaged zip archive: {str(err).splitlines()[0]}") from None
    if claimed > MAX_WEIGHT_BYTES:
        raise ValueError(f"{path}: unpacks to {claimed:,} bytes, more than the {MAX_WEIGHT_BYTES:,} of any "
                         f"network npcnn builds (a zip bomb, or not a checkpoint)")


def read_metadata(path, entry, key):
    """The JSON object of an ``.npz``'s metadata ``entry`` (the array stored
    under ``key``): text, valid JSON, an object whose ``meta`` is an object
    and whose ``arch`` is a name."""
    if entry.dtype.kind not in "US" or entry.shape != ():
        raise ValueError(f"{path}: its {key} entry is a {entry.dtype} array of shape {entry.shape}, "
                         f"not the JSON text npcnn writes")
    try:
        meta = json.loads(str(entry))
    except ValueError as err:
        raise ValueError(f"{path}: its {key} metadata is not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: its {key} metadata is a {type(meta).__name__}, not a dict")
    if not isinstance(meta.get("meta", {}), dict):
        raise ValueError(f"{path}: its meta is a {type(meta['meta']).__name__}, not a dict")
    if not isinstance(meta.get("arch", ""), str):
        raise ValueError(f"{path}: its arch is a {type(meta['arch']).__name__}, not a name")
    return meta


def read_npz(path, what):
    """``(path, {name: array})`` of the ``.npz`` ``what`` names ("npcnn
    weight file"): a regular file (a FIFO would block np.load), a zip that
    unpacks to at most ``MAX_WEIGHT_BYTES``, read without unpickling. Any
    failure is a ValueError that starts with the path."""
    path = readable_file(path, what)
    check_archive(path, zip_required=True)
    try:
        with np.load(path, allow_pickle=False) as data:
            return path, {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a readable {what} ({str(err).splitlines()[0]})") from None
