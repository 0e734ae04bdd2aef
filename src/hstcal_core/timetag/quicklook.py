"""Quicklook PNG of a lightcurve product: flux vs time with errors, GTI gaps shaded,
and the Lomb–Scargle periodogram (hstlc's quicklook plots, with the gaps shown)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..fitsio import atomic_path
from .lightcurve import BIN_NO_GTI

__all__ = ["quicklook_name", "write_quicklook"]


def quicklook_name(product: Path) -> Path:
    """``<product stem>.png`` beside the product."""
    return Path(product).with_suffix(".png")


def _gaps(start: np.ndarray, stop: np.ndarray, no_gti: np.ndarray) -> list[tuple[float, float]]:
    """Runs of consecutive no-good-time bins as (start, stop) spans."""
    spans = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], no_gti.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        spans.append((float(start[a]), float(stop[b - 1])))
    return spans


def write_quicklook(product: str | Path, out: str | Path | None = None) -> Path:
    """Plot ``product`` (a ``_curve.fits`` or composite) to a PNG; returns its path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    product = Path(product)
    out = quicklook_name(product) if out is None else Path(out)
    with fits.open(product) as hdul:
        header = hdul[0].header.copy()
        lc = Table.read(hdul["LIGHTCURVE"])
        pg = Table.read(hdul["PERIODOGRAM"])
    mjd0 = float(np.nanmin(lc["mjd"]))
    half = 0.5 * np.asarray(lc["bin_width"]) / 86400.0
    t = (np.asarray(lc["mjd"]) - mjd0) * 1440.0  # minutes
    start = (np.asarray(lc["mjd"]) - half - mjd0) * 1440.0
    stop = (np.asarray(lc["mjd"]) + half - mjd0) * 1440.0
    no_gti = (np.asarray(lc["dq"]) & BIN_NO_GTI) != 0

    fig, (ax_lc, ax_pg) = plt.subplots(2, 1, figsize=(10, 7),
                                       gridspec_kw={"height_ratios": [2, 1]})
    ok = ~no_gti & np.isfinite(np.asarray(lc["flux"], dtype=float))
    ax_lc.errorbar(t[ok], np.asarray(lc["flux"])[ok], yerr=np.asarray(lc["flux_error"])[ok],
                   fmt=".", ms=2, lw=0.5, color="k", ecolor="0.6")
    for a, b in _gaps(start, stop, no_gti):
        ax_lc.axvspan(a, b, color="tab:red", alpha=0.15, lw=0)
    ax_lc.set_xlabel(f"minutes since MJD {mjd0:.5f}  (shaded: no good time)")
    ax_lc.set_ylabel("flux [erg s$^{-1}$ cm$^{-2}$ Å$^{-1}$]")
    title = " ".join(str(header.get(k, "")) for k in
                     ("TARGNAME", "INSTRUME", "DETECTOR", "OPT_ELEM", "CENWAVE", "APERTURE"))
    ax_lc.set_title(f"{title}   {header.get('WAVEMIN', 0):.0f}–{header.get('WAVEMAX', 0):.0f} Å,"
                    f" {header.get('BINSTEP', 0):g} s bins")
    if len(pg):
        ax_pg.plot(np.asarray(pg["frequency"]) * 1e3, pg["power"], lw=0.7, color="tab:blue")
        ax_pg.set_xscale("log")
        ax_pg.set_xlabel("frequency [mHz]")
        ax_pg.set_ylabel("Lomb–Scargle power")
    else:
        ax_pg.text(0.5, 0.5, "no periodogram (too few good bins)", ha="center",
                   transform=ax_pg.transAxes)
        ax_pg.set_axis_off()
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return out
