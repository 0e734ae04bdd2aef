"""Archive backends: the local archive index (the default, offline) and MAST via astroquery."""

from .base import Archive, ArchiveFile, Dataset, QueryCriteria, match_name

__all__ = ["Archive", "ArchiveFile", "Dataset", "QueryCriteria", "match_name"]
