"""Lightcurve products: ``<rootname>_curve.fits`` and HLSP-named composites.

Layout (after hstlc's products, with the statistics added): PRIMARY (target,
instrument setup, exposure, wavelength range, statistics, provenance in HISTORY,
reader approximations in COMMENT), LIGHTCURVE (one row per bin), PERIODOGRAM
(frequency, power).  Written atomically (temporary file + rename).

HLSP naming (MAST HLSP contributor guide): ``hlsp_hstlc_hst_<inst>-<det>_<target>_
<opt>-<cenwave>-<aperture>_v1_sci.fits``, lower case, at most 90 characters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..fitsio import add_provenance, write_atomic
from .lightcurve import Lightcurve
from .paths import safe_component
from .variability import Periodogram, Variability

__all__ = ["COLUMN_UNITS", "COPIED_KEYWORDS", "curve_name", "hlsp_name", "curve_hdulist",
           "write_curve", "read_curve", "HLSP_VERSION"]

HLSP_VERSION = "v1"
_HLSP_MAX = 90

COLUMN_UNITS = {
    "time": "s", "mjd": "d", "bin_width": "s", "exposure": "s", "counts": "count",
    "gross": "count/s", "background": "count/s", "net": "count/s", "error": "count/s",
    "flux": "erg/(s cm2 Angstrom)", "flux_error": "erg/(s cm2 Angstrom)",
}

# Keys copied from the exposure into the product's primary header.
COPIED_KEYWORDS = ("TELESCOP", "INSTRUME", "DETECTOR", "SEGMENT", "ROOTNAME", "TARGNAME",
                   "RA_TARG", "DEC_TARG", "PROPOSID", "OPT_ELEM", "CENWAVE", "APERTURE",
                   "EXPSTART", "EXPEND", "EXPTIME", "EXPFLAG", "OBSMODE", "LIFE_ADJ")

_STAT_KEYS = {"n_bins": "NBINS", "total_counts": "TOTCOUNT", "mean_counts": "MEANCNT",
              "std_counts": "STDCNT", "poisson_factor": "POISSFAC", "mean_flux": "MEANFLUX",
              "std_flux": "STDFLUX", "pearson_r": "PEARSONR", "pearson_p": "PEARSONP"}


def curve_name(rootname: str) -> str:
    """``<rootname>_curve.fits`` (rootname made safe)."""
    return f"{safe_component(rootname, lower=True, max_len=32)}_curve.fits"


def hlsp_name(instrument: str, detector: str, target: str, opt_elem: str,
              cenwave: object, aperture: str) -> str:
    """The HLSP file name of a composite (lower case, ≤ 90 characters).

    The target part is shortened (never the instrument setup) when the whole would be
    longer than 90 characters.
    """
    def part(v: object, n: int = 24) -> str:
        return safe_component(v, lower=True, max_len=n).replace("_", "")

    setup = f"{part(opt_elem)}-{part(cenwave)}-{part(aperture)}"
    head = f"hlsp_hstlc_hst_{part(instrument)}-{part(detector)}_"
    tail = f"_{setup}_{HLSP_VERSION}_sci.fits"
    room = _HLSP_MAX - len(head) - len(tail)
    target_part = safe_component(target, lower=True, max_len=max(9, room))
    name = f"{head}{target_part}{tail}"
    if len(name) > _HLSP_MAX:  # an absurd setup string: cut the middle, keep the suffix
        name = name[:_HLSP_MAX - len(tail)] + tail
    return name


def curve_hdulist(lc: Lightcurve, header: fits.Header | Mapping, *,
                  stats: Variability | None = None, pgram: Periodogram | None = None,
                  stage: str = "lightcurve", detector: str = "",
                  inputs: Iterable[str] = (), parameters: Mapping | None = None,
                  extra: Mapping[str, object] | None = None) -> fits.HDUList:
    """The product of one lightcurve (or composite) as an HDUList."""
    primary = fits.PrimaryHDU()
    ph = primary.header
    for key in COPIED_KEYWORDS:
        if key in header and header[key] is not None:
            ph[key] = header[key]
    meta = lc.meta
    ph["WAVEMIN"] = (float(meta["wave_min"]), "lower wavelength of the events used (Angstrom)")
    ph["WAVEMAX"] = (float(meta["wave_max"]), "upper wavelength of the events used (Angstrom)")
    ph["BINSTEP"] = (float(meta["step"]), "bin width (s)")
    ph["NELEMENT"] = (int(meta["n_elements"]), "x1d elements averaged into the flux")
    ph["SDQFLAGS"] = (int(meta["sdqflags"]), "event DQ bits rejected")
    ph["NSRCEVT"] = (int(meta["n_source_events"]), "source-band events used")
    ph["NBKGEVT"] = (int(meta["n_background_events"]), "background-band events used")
    ph["AIRGLOW"] = (";".join(f"{lo:g}-{hi:g}" for lo, hi in meta["airglow"]) or "none",
                     "wavelength windows excluded (Angstrom)")
    for key, value in (extra or {}).items():
        ph[key] = value
    if stats is not None:
        for name, key in _STAT_KEYS.items():
            value = getattr(stats, name)
            ph[key] = value if np.isfinite(value) else "NaN"
    if pgram is not None:
        ph["LSPEAKF"] = (pgram.peak_frequency, "Lomb-Scargle peak frequency (Hz)")
        ph["LSPEAKP"] = (pgram.peak_power, "Lomb-Scargle peak power")
        ph["LSFAP"] = (pgram.false_alarm_probability, "false-alarm probability of the peak")
    for note in meta.get("notes", ()):
        ph.add_comment(str(note))
    add_provenance(ph, stage=stage, detector=detector, inputs=inputs,
                   parameters=dict(parameters or {}))

    table = Table({name: values for name, values in lc.columns.items()})
    for name, unit in COLUMN_UNITS.items():
        if name in table.colnames:
            table[name].unit = unit
    hdus = [primary, fits.BinTableHDU(table, name="LIGHTCURVE")]
    freq = pgram.frequency if pgram is not None else np.zeros(0)
    power = pgram.power if pgram is not None else np.zeros(0)
    ptab = Table({"frequency": freq, "power": power})
    ptab["frequency"].unit = "Hz"
    hdus.append(fits.BinTableHDU(ptab, name="PERIODOGRAM"))
    return fits.HDUList(hdus)


def write_curve(hdul: fits.HDUList, path: str | Path) -> Path:
    """Write a product atomically (temporary file, checksums, rename)."""
    return write_atomic(hdul, path)


def read_curve(path: str | Path) -> tuple[Table, fits.Header]:
    """The LIGHTCURVE table and primary header of a product."""
    with fits.open(path) as hdul:
        return Table.read(hdul["LIGHTCURVE"]), hdul[0].header.copy()
