"""The two errors of ``npcnn.data``.

Both subclass ``ValueError`` so that callers who only know "bad input" can
catch that; every message starts with the file, directory or URL at fault.
"""


class DataError(ValueError):
    """A data file is missing, malformed, or does not hold what it should."""


class DownloadError(DataError):
    """No mirror delivered a file whose decompressed SHA-256 matches."""
