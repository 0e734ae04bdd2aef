"""Synthetic STIS MAMA TIME-TAG exposures: ``_tag.fits`` + ``_x1d.fits`` (+ flat, bad pixels).

The events come from the core engine (:mod:`hstcal_core.simulate.timetag`); this module
writes them as STIS does and as :mod:`hstcal_stis.timetag` reads them:

* EVENTS columns TIME (float64), AXIS1, AXIS2, DETAXIS1 — 1-based high-res pixels
  (``AXIS = floor(2·x + 2)`` for a low-res 0-based position x, the inverse of the
  reader's ``x = (AXIS - 1.5)/2``); GTI table; EXPTIME = Σ GTI;
* x1d rows (one first-order, one per SPORDER echelle) with A2CENTER, EXTRSIZE,
  BK1SIZE/BK2SIZE, BK1OFFST/BK2OFFST and EXTRLOCY (a straight, tilted trace; 1-based
  rows); NET = expected source + airglow rate, FLUX = NET / sensitivity, GROSS = events
  in the box per element / EXPTIME;
* hot pixels (flagged events) and a BPIXTAB-like table that marks them (VALUE 16, "hot
  pixel", in SDQFLAGS 31743), since a tag file has no DQ column;
* optionally a low-res pixel-to-pixel flat (``<root>_pfl.fits``).

Trace centres use four decimals so that no region edge coincides with the quarter-pixel
grid of the quantized events; the counts per region are then exact.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from hstcal_core.errors import StageNotSupportedError
from hstcal_core.fitsio import atomic_path
from hstcal_core.simulate.timetag import (
    AIRGLOW_LINES,
    CATEGORIES,
    LightcurveModel,
    Plane,
    SpectrumLayout,
    TimeTagTruth,
    model_from_options,
    region_truth,
    sensitivity_curve,
    synthesize_events,
    write_truth,
)
from hstcal_core.timetag.events import Region

__all__ = ["simulate", "simulate_stis_timetag", "SETTINGS"]

_NELEM = 1024
_REFERENCE_COLUMN = 511.5  # trace tilt pivot (0-based low-res column)
_SDQFLAGS = 31743
_HOT_PIXEL_DQ = 16         # stisdq.h: hot pixel


@dataclass(frozen=True)
class _Spectrum:
    order: int
    wave0: float       # Å at column 0
    dispersion: float  # Å per low-res pixel
    a2center: float    # 1-based row at the pivot column
    slope: float
    extrsize: float
    bk_size: float
    bk_offset: float   # ± offset of the two background bands


def _echelle(m_low: int, m_high: int, constant: float, resolution: float,
             first_row: float, spacing: float) -> tuple[_Spectrum, ...]:
    """Echelle orders: ``λc = constant/m``, two pixels per resolution element."""
    orders = []
    for m in range(m_high, m_low - 1, -1):
        center = constant / m
        dispersion = center / (2 * resolution)
        row = float(np.float32(first_row + (m_high - m) * spacing))
        orders.append(_Spectrum(m, center - dispersion * _REFERENCE_COLUMN, dispersion, row,
                                0.008, 7.0, 5.0, spacing / 2))
    return tuple(orders)


# (DETECTOR, OPT_ELEM, CENWAVE) → spectra; wavelength ranges from the STIS IHB grating
# tables (G140L 1119–1715 Å, 0.58 Å/px; G230L 1570–3180 Å, 1.58 Å/px; E140M orders 86–129,
# R = 45,800), rounded.
SETTINGS: dict[tuple[str, str, int], tuple[_Spectrum, ...]] = {
    ("FUV-MAMA", "G140L", 1425): (
        _Spectrum(1, 1118.8, 0.5831, float(np.float32(512.3456)), 0.004, 11.0, 5.0, 300.0),),
    ("FUV-MAMA", "E140M", 1425): _echelle(86, 129, 148720.0, 45800.0, 120.3711, 17.5),
    ("NUV-MAMA", "G230L", 2376): (
        _Spectrum(1, 1570.0, 1.58, float(np.float32(512.3456)), 0.004, 11.0, 5.0, 300.0),),
}
_DEFAULT = {"FUV-MAMA": ("G140L", 1425), "NUV-MAMA": ("G230L", 2376)}


def _rootname(seed: int, k: int) -> str:
    return f"ox{seed % 1000:03d}{k:02d}sq"


def _layout(spec: _Spectrum, echelle: bool) -> SpectrumLayout:
    pixel = np.arange(_NELEM, dtype=np.float64)
    wavelength = spec.wave0 + spec.dispersion * pixel
    sens = sensitivity_curve(wavelength, peak_area_cm2=300.0 if echelle else 1000.0,
                             peak_wavelength=1450.0 if wavelength[0] < 1700 else 2400.0,
                             width=400.0)
    flux = (wavelength / 1500.0) ** -1.0
    center0 = (spec.a2center - 1.0) - spec.slope * _REFERENCE_COLUMN
    source = Region(center0, spec.extrsize, spec.slope)
    backgrounds = (Region(center0 - spec.bk_offset, spec.bk_size, spec.slope),
                   Region(center0 + spec.bk_offset, spec.bk_size, spec.slope))
    return SpectrumLayout(name=f"order {spec.order}" if echelle else f"SPORDER {spec.order}",
                          segment=0, pixel=pixel, wavelength=wavelength, sensitivity=sens,
                          flux=flux, source=source, background=backgrounds,
                          profile_sigma=0.8 if echelle else 1.2)


def simulate_stis_timetag(out_dir: str | os.PathLike, *, detector: str = "FUV-MAMA",
                          count: int = 1, seed: int = 0, exptime: float = 1000.0,
                          gti: list[tuple[float, float]] | None = None,
                          source_rate: float = 50.0, n_events: int | None = None,
                          background_rate: float = 2e-5, airglow: bool = True,
                          hot_pixel_rate: float = 0.05, opt_elem: str | None = None,
                          cenwave: int | None = None, write_flat: bool = False,
                          targname: str = "SIM-TARGET", start_mjd: float = 58000.0,
                          expflag: str = "NORMAL", model: LightcurveModel | str = "constant",
                          **model_params: Any) -> list[TimeTagTruth]:
    """Write ``count`` STIS MAMA TIME-TAG exposures and return their truth.

    Parameters
    ----------
    out_dir : path
    detector : ``"FUV-MAMA"`` or ``"NUV-MAMA"``
    count, seed, exptime, gti, source_rate, n_events, background_rate, airglow
        As :func:`hstcal_cos.simulate_timetag.simulate_cos_timetag` (EXPTIME = Σ GTI;
        default GTIs leave a gap from 45 % to 55 % of ``exptime``).
    hot_pixel_rate : float
        counts/s of each of the five hot pixels (flagged through ``<root>_bpx.fits``).
    opt_elem, cenwave : optional
        A key of :data:`SETTINGS` (default G140L/1425 FUV, G230L/2376 NUV; E140M/1425
        for the echelle).
    write_flat : bool
        Also write a low-res flat ``<root>_pfl.fits`` (1 ± 5 %).
    model : LightcurveModel or str
        A model, or its kind with the parameters as keywords (``model="flare",
        time=..., amplitude=..., decay=...``).
    """
    detector = detector.upper()
    if detector not in _DEFAULT:
        raise ValueError(f"detector must be FUV-MAMA or NUV-MAMA, got {detector!r}")
    opt_elem = (opt_elem or _DEFAULT[detector][0]).upper()
    cenwave = int(cenwave or _DEFAULT[detector][1])
    key = (detector, opt_elem, cenwave)
    if key not in SETTINGS:
        raise ValueError(f"no simulated STIS setting {key}; known: {sorted(SETTINGS)}")
    unknown = set(model_params) - {"period", "amplitude", "time", "decay", "start",
                                   "duration", "depth", "flare_time", "flare_amplitude",
                                   "eclipse_start", "eclipse_duration", "eclipse_depth"}
    if unknown:
        raise ValueError(f"unknown simulator argument(s) {sorted(unknown)}")
    if not isinstance(model, LightcurveModel):
        model = model_from_options({**model_params, "model": model})
    gti_array = np.asarray(gti if gti is not None else
                           [(0.0, 0.45 * exptime), (0.55 * exptime, exptime)], dtype=np.float64)
    if n_events is not None:
        integral = float(np.sum(model.cumulative(gti_array[:, 1])
                                - model.cumulative(gti_array[:, 0])))
        source_rate = float(n_events) / integral
    echelle = opt_elem.startswith("E")
    spectra = SETTINGS[key]
    layouts = [_layout(s, echelle) for s in spectra]
    scale = source_rate / sum(float(layout.net_rate.sum()) for layout in layouts)
    layouts = [replace(layout, flux=layout.flux * scale) for layout in layouts]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seeds = np.random.SeedSequence(seed).spawn(int(count))
    truths = [_one_exposure(out, _rootname(seed, k), detector, opt_elem, cenwave, spectra,
                            layouts, gti_array, np.random.default_rng(seeds[k]), source_rate,
                            background_rate, AIRGLOW_LINES if airglow else (), hot_pixel_rate,
                            model, write_flat, targname, start_mjd + 0.1 * k, expflag, echelle)
              for k in range(int(count))]
    write_truth(truths, out)
    return truths


def _hot_pixels(layouts: list[SpectrumLayout]) -> list[tuple[int, float, float]]:
    """Three hot pixels in the first spectrum's box, one in its lower background band,
    one far from any spectrum."""
    first = layouts[0]
    pixels = []
    for x in (200.0, 600.0, 800.0):
        pixels.append((0, x, float(np.round(first.source.center + first.source.slope * x))))
    lower = first.background[0]
    pixels.append((0, 400.0, float(np.round(lower.center + lower.slope * 400.0))))
    pixels.append((0, 50.0, 1000.0))
    return pixels


def _one_exposure(out, root, detector, opt_elem, cenwave, spectra, layouts, gti, rng,
                  source_rate, background_rate, airglow, hot_pixel_rate, model, write_flat,
                  targname, expstart, expflag, echelle) -> TimeTagTruth:
    hot = _hot_pixels(layouts)
    events = synthesize_events(layouts, [Plane(0, (-0.5, _NELEM - 0.5), (-0.5, _NELEM - 0.5))],
                               gti=gti, seed=rng, source_rate=source_rate, model=model,
                               background_rate=background_rate, airglow=airglow,
                               hot_pixels=hot, hot_pixel_rate=hot_pixel_rate,
                               flag_bit=_HOT_PIXEL_DQ, time_dtype=np.float64)
    axis1 = np.floor(2 * events.x + 2).astype(np.int64)
    axis2 = np.floor(2 * events.y + 2).astype(np.int64)
    keep = (axis1 >= 1) & (axis1 <= 2 * _NELEM) & (axis2 >= 1) & (axis2 <= 2 * _NELEM)
    events = events.take(keep)
    axis1, axis2 = axis1[keep], axis2[keep]
    events.x = (axis1 - 1.5) / 2  # what the reader reconstructs
    events.y = (axis2 - 1.5) / 2
    exptime = float((gti[:, 1] - gti[:, 0]).sum())
    primary = fits.Header()
    primary.update(TELESCOP="HST", INSTRUME="STIS", DETECTOR=detector, ROOTNAME=root,
                   TARGNAME=targname, PROPOSID=99999, OBSTYPE="SPECTROSCOPIC",
                   OBSMODE="TIME-TAG", OPT_ELEM=opt_elem, CENWAVE=cenwave,
                   APERTURE="0.2X0.2" if echelle else "52X0.2", CENTERA1=513, CENTERA2=513,
                   SIZAXIS1=1024, SIZAXIS2=1024, PFLTFILE="N/A", BPIXTAB="N/A")
    files = []
    tag = out / f"{root}_tag.fits"
    events_hdu = fits.BinTableHDU.from_columns([
        fits.Column("TIME", "D", unit="s", array=events.time),
        fits.Column("AXIS1", "I", array=axis1.astype(np.int16)),
        fits.Column("AXIS2", "I", array=axis2.astype(np.int16)),
        fits.Column("DETAXIS1", "I", array=axis1.astype(np.int16)),
    ], name="EVENTS")
    events_hdu.header.update(EXPSTART=expstart, EXPEND=expstart + float(gti[-1, 1]) / 86400.0,
                             EXPTIME=exptime, EXPFLAG=expflag, SDQFLAGS=_SDQFLAGS)
    gti_hdu = fits.BinTableHDU.from_columns(
        [fits.Column("START", "D", unit="s", array=gti[:, 0]),
         fits.Column("STOP", "D", unit="s", array=gti[:, 1])], name="GTI")
    _write(tag, fits.HDUList([fits.PrimaryHDU(header=primary), events_hdu, gti_hdu]))
    files.append(tag)
    x1d = out / f"{root}_x1d.fits"
    _write(x1d, _x1d_hdul(primary, spectra, layouts, events, gti, exptime, expstart,
                          background_rate, airglow, model))
    files.append(x1d)
    bpx = out / f"{root}_bpx.fits"
    _write(bpx, fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([
        fits.Column("PIX1", "I", array=[int(p[1]) + 1 for p in hot]),
        fits.Column("PIX2", "I", array=[int(p[2]) + 1 for p in hot]),
        fits.Column("LENGTH", "I", array=[1] * len(hot)),
        fits.Column("AXIS", "I", array=[1] * len(hot)),
        fits.Column("VALUE", "I", array=[_HOT_PIXEL_DQ] * len(hot))])]))
    files.append(bpx)
    if write_flat:
        flat = np.clip(1 + 0.05 * rng.standard_normal((_NELEM, _NELEM)), 0.8, 1.2)
        path = out / f"{root}_pfl.fits"
        _write(path, fits.HDUList([fits.PrimaryHDU(),
                                   fits.ImageHDU(flat.astype(np.float32), name="SCI")]))
        files.append(path)
    extractions = [(layout.name, 0, layout.source, layout.background) for layout in layouts]
    extraction, is_source, counts = region_truth(events.x, events.y, events.segment,
                                                 events.category, extractions)
    totals = {c: int((events.category == code).sum()) for c, code in CATEGORIES.items()}
    shares = np.array([layout.net_rate.sum() for layout in layouts])
    return TimeTagTruth(
        detector="stis_" + detector.lower().replace("-", "_"), rootname=root, files=files,
        exptime=exptime, expstart=expstart, gti=gti.copy(), model=model,
        source_rate=source_rate,
        source_share={layout.name: float(s) for layout, s in zip(layouts, shares / shares.sum())},
        background_rate=background_rate, sdqflags=_SDQFLAGS, flag_bit=_HOT_PIXEL_DQ,
        counts=counts, totals=totals, expected=events.expected, events=events,
        extraction=extraction, is_source=is_source,
        notes=[f"flagged events are hot pixels listed in {bpx.name} (reader option bpixtab)"])


def _airglow_rate(layout: SpectrumLayout, airglow) -> np.ndarray:
    from scipy.special import ndtr

    w = layout.wavelength
    edges = np.concatenate([[w[0] - 0.5 * (w[1] - w[0])], 0.5 * (w[1:] + w[:-1]),
                            [w[-1] + 0.5 * (w[-1] - w[-2])]])
    bottom, top = layout.rows()
    rate = np.zeros(len(w))
    for line in airglow:
        if w.min() + 3 * line.sigma <= line.wavelength <= w.max() - 3 * line.sigma:
            rate += line.rate * layout.source.height / (top - bottom) * np.diff(
                ndtr((edges - line.wavelength) / line.sigma))
    return rate


def _x1d_hdul(primary, spectra, layouts, events, gti, exptime, expstart, background_rate,
              airglow, model) -> fits.HDUList:
    mean_factor = float(np.sum(model.cumulative(gti[:, 1]) - model.cumulative(gti[:, 0]))) \
        / exptime
    rows = len(layouts)
    gross = np.zeros((rows, _NELEM))
    clean = events.dq == 0
    for k, layout in enumerate(layouts):
        mid = layout.source.center + layout.source.slope * events.x
        box = clean & (events.y - mid >= -0.5 * layout.source.height) & \
            (events.y - mid < 0.5 * layout.source.height)
        element = np.clip(np.floor(events.x[box] + 0.5).astype(np.int64), 0, _NELEM - 1)
        gross[k] = np.bincount(element, minlength=_NELEM) / exptime
    net = np.stack([layout.net_rate * mean_factor + _airglow_rate(layout, airglow)
                    for layout in layouts])
    sens = np.stack([layout.sensitivity for layout in layouts])
    pixel = np.arange(_NELEM, dtype=np.float64)
    extrlocy = np.stack([s.a2center + s.slope * (pixel - _REFERENCE_COLUMN) for s in spectra])
    fmt = str(_NELEM)
    cols = [
        fits.Column("SPORDER", "I", array=[s.order for s in spectra]),
        fits.Column("NELEM", "I", array=[_NELEM] * rows),
        fits.Column("WAVELENGTH", fmt + "D", unit="Angstroms",
                    array=np.stack([layout.wavelength for layout in layouts])),
        fits.Column("GROSS", fmt + "E", unit="Counts/s", array=gross.astype(np.float32)),
        fits.Column("BACKGROUND", fmt + "E", unit="Counts/s",
                    array=np.stack([np.full(_NELEM, background_rate * s.extrsize)
                                    for s in spectra]).astype(np.float32)),
        fits.Column("NET", fmt + "E", unit="Counts/s", array=net.astype(np.float32)),
        fits.Column("FLUX", fmt + "E", array=(net / sens).astype(np.float32)),
        fits.Column("ERROR", fmt + "E",
                    array=(np.sqrt(gross * exptime) / exptime / sens).astype(np.float32)),
        fits.Column("NET_ERROR", fmt + "E",
                    array=(np.sqrt(gross * exptime) / exptime).astype(np.float32)),
        fits.Column("DQ", fmt + "I", array=np.zeros((rows, _NELEM), np.int16)),
        fits.Column("A2CENTER", "E", array=[s.a2center for s in spectra]),
        fits.Column("EXTRSIZE", "E", array=[s.extrsize for s in spectra]),
        fits.Column("MAXSRCH", "I", array=[0] * rows),
        fits.Column("BK1SIZE", "E", array=[s.bk_size for s in spectra]),
        fits.Column("BK2SIZE", "E", array=[s.bk_size for s in spectra]),
        fits.Column("BK1OFFST", "E", array=[-s.bk_offset for s in spectra]),
        fits.Column("BK2OFFST", "E", array=[s.bk_offset for s in spectra]),
        fits.Column("EXTRLOCY", fmt + "E", array=extrlocy.astype(np.float32)),
        fits.Column("OFFSET", "E", array=[0.0] * rows),
    ]
    table = fits.BinTableHDU.from_columns(cols, name="SCI")
    table.header.update(EXPSTART=expstart, EXPTIME=exptime, EXPFLAG="NORMAL",
                        SDQFLAGS=_SDQFLAGS)
    return fits.HDUList([fits.PrimaryHDU(header=primary), table])


def _write(path: Path, hdul: fits.HDUList) -> None:
    with atomic_path(path) as tmp:
        hdul.writeto(tmp, overwrite=True)


def simulate(out_dir: str | os.PathLike, *, kind: str = "timetag", detector: str = "FUV-MAMA",
             **kwargs: Any) -> list[TimeTagTruth]:
    """The ``stis_fuv_mama``/``stis_nuv_mama`` simulator (``hstcal simulate --kind timetag``)."""
    if kind != "timetag":
        raise StageNotSupportedError(
            f"simulation of kind {kind!r} is not supported by plugin hstcal-stis for detector "
            f"stis_{detector.lower().replace('-', '_')} (supported kinds: timetag)")
    for name in ("gain", "binning"):
        kwargs.pop(name, None)
    for name in ("count", "seed", "cenwave", "n_events"):
        if kwargs.get(name) is not None:
            kwargs[name] = int(kwargs[name])
    for name in ("exptime", "source_rate", "background_rate", "hot_pixel_rate", "start_mjd"):
        if kwargs.get(name) is not None:
            kwargs[name] = float(kwargs[name])
    for name in ("airglow", "write_flat"):
        if isinstance(kwargs.get(name), str):
            kwargs[name] = kwargs[name].strip().lower() in ("1", "true", "yes", "on")
    if kwargs.get("start_mjd") is None:
        kwargs.pop("start_mjd", None)
    return simulate_stis_timetag(out_dir, detector=detector, **kwargs)
