"""In-memory images passed between hooks: imsets, exposures, combined images, products.

All arrays are owned by the object that holds them; functions that transform an
image return a new one (``dataclasses.replace``) and never write into their input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

__all__ = ["ImSet", "Exposure", "CombinedImage", "Product", "image_shape"]


@dataclass(frozen=True)
class ImSet:
    """One SCI/ERR/DQ triplet with its SCI extension header.

    ``sci`` and ``err`` are float32, ``dq`` is uint16 (HST convention).
    """

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    header: fits.Header

    @property
    def shape(self) -> tuple[int, int]:
        return self.sci.shape  # type: ignore[return-value]

    @property
    def exptime(self) -> float:
        return float(self.header.get("EXPTIME", 0.0))


@dataclass(frozen=True)
class Exposure:
    """A file's worth of imsets and its primary header.

    Parameters
    ----------
    path : Path
        Where it was read from (kept for error messages and provenance).
    primary : astropy.io.fits.Header
        Primary header (a private copy).
    imsets : tuple of ImSet
        In file order (EXTVER 1, 2, ...).
    """

    path: Path
    primary: fits.Header
    imsets: tuple[ImSet, ...]

    @property
    def rootname(self) -> str:
        root = self.primary.get("ROOTNAME")
        if root:
            return str(root).strip().lower()
        name = self.path.name
        return name.split("_")[0].split(".")[0].lower()

    def key(self, name: str, default=None):
        """Return a primary-header keyword, falling back to the first SCI header."""
        if name in self.primary:
            return self.primary[name]
        if self.imsets and name in self.imsets[0].header:
            return self.imsets[0].header[name]
        return default


@dataclass(frozen=True)
class CombinedImage:
    """Result of cosmic-ray rejection over a set of imsets (ocrreject's crj).

    ``sci`` is the sum over inputs (mean rate × total exposure factor + sky),
    exactly as ocrreject writes it; ``masks`` holds one boolean CR mask per input
    imset, in the order of ``sources``.
    """

    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    masks: np.ndarray
    sources: tuple[tuple[str, int], ...]
    texptime: float
    ncombine: int
    primary: fits.Header
    header: fits.Header
    parameters: dict = field(default_factory=dict)
    sky: tuple[float, ...] = ()
    n_rejected: int = 0

    @property
    def rootnames(self) -> list[str]:
        return sorted({root for root, _ in self.sources})


@dataclass(frozen=True)
class Product:
    """A finished single-imset product (a reference file) ready to be written."""

    primary: fits.Header
    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    sci_header: fits.Header
    err_header: fits.Header | None = None
    dq_header: fits.Header | None = None
    inputs: tuple[str, ...] = ()
    kind: str = ""
    path: Path | None = None


def image_shape(shape, name: str = "shape") -> tuple[int, int]:
    """``(ny, nx)`` of a 2-D image shape; ``ValueError`` naming ``name`` unless both are
    positive integers."""
    try:
        ny, nx = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be two positive integers (ny, nx), got {shape!r}") from None
    if ny <= 0 or nx <= 0:
        raise ValueError(f"{name} must be two positive integers (ny, nx), got {shape!r}")
    return ny, nx
