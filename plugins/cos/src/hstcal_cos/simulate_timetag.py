"""Synthetic COS TIME-TAG exposures: corrtag (FUV _a/_b, NUV) or FUV rawtag, plus the x1d.

The events come from the core engine (:mod:`hstcal_core.simulate.timetag`); this
module lays the spectra out as calcos would describe them and writes the files with
the keywords :mod:`hstcal_cos.timetag` reads:

* corrtag EVENTS columns of calcos (TIME, RAWX, RAWY, XCORR, YCORR, XDOPP, XFULL,
  YFULL, WAVELENGTH, EPSILON, DQ, PHA; float32 TIME as calcos writes it) and a GTI
  table; XCORR = XFULL + SHIFT1 (calcos ``timetag.py``: ``xi_full = xi - shift1``), so a
  reader that took XCORR would be SHIFT1 pixels off in wavelength;
* the extraction keywords SP_LOC/SP_HGT/SP_SLP/B_BKG1/B_BKG2/B_HGT1/B_HGT2 in both the
  corrtag EVENTS and the x1d SCI headers, in calcos' conventions (centre where the
  spectrum crosses the middle of the image; see :mod:`hstcal_cos.timetag`);
* x1d rows per segment/stripe: WAVELENGTH at ``pixel = arange(NELEM) - X_OFFSET +
  DPIXEL1x``; NET = expected source + airglow rate, FLUX = NET / sensitivity (so NET /
  FLUX is the sensitivity the events were drawn with), GCOUNTS = events in the source
  box per element, GROSS = GCOUNTS / EXPTIME, BACKGROUND = the dark rate × SP_HGT;
* EXPTIME = Σ GTI (calcos ``timetag.recomputeExptime``).

A FUV **rawtag** (``rawtag=True``) has only TIME, RAWX, RAWY, PHA and -999 extraction
keywords, as the real ones; RAWX = XFULL - (``raw_offset`` + ``raw_stretch``·XFULL),
RAWY = YFULL - ``raw_dy``: the distortion the rawtag reader must register away.
"""

from __future__ import annotations

import logging
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

from .timetag import FUV_SEGMENT_CODE, FUV_X, NUV_EXTENDED_X, NUV_X, NUV_X_OFFSET

log = logging.getLogger(__name__)

__all__ = ["simulate", "simulate_cos_timetag", "SETTINGS"]


@dataclass(frozen=True)
class _Stripe:
    """Where one segment/stripe's spectrum sits (calcos keyword values)."""

    name: str
    wave0: float          # Å at XFULL = 0
    dispersion: float     # Å per pixel
    sp_loc: float
    sp_hgt: float
    b_bkg: tuple[float, float]
    b_hgt: tuple[float, float]
    slope: float = 0.0


# (detector, OPT_ELEM, CENWAVE) → stripes.  Wavelength ranges from COS IHB §5.11
# (Tables 5.3/5.4), rounded; extraction rows modelled on the XTRACTAB values seen in
# real headers (FUV SP_HGT 35-51, B_HGT 31; NUV SP_HGT 8).
SETTINGS: dict[tuple[str, str, int], tuple[_Stripe, ...]] = {
    ("FUV", "G130M", 1291): (
        _Stripe("FUVA", 1297.75, 0.00997, 470.0, 35.0, (415.0, 595.0), (31.0, 31.0)),
        _Stripe("FUVB", 1134.25, 0.00997, 530.0, 35.0, (470.0, 655.0), (31.0, 31.0))),
    ("FUV", "G140L", 1105): (
        _Stripe("FUVA", 1026.75, 0.0803, 463.0, 51.0, (414.0, 606.0), (31.0, 31.0)),),
    ("FUV", "G160M", 1600): (
        _Stripe("FUVA", 1600.0, 0.01223, 470.0, 35.0, (415.0, 595.0), (31.0, 31.0)),
        _Stripe("FUVB", 1400.0, 0.01223, 530.0, 35.0, (470.0, 655.0), (31.0, 31.0))),
    ("NUV", "G185M", 1850): (
        _Stripe("NUVA", 1665.0, 0.037, 190.0, 8.0, (30.0, 600.0), (15.0, 15.0), 0.002),
        _Stripe("NUVB", 1770.0, 0.037, 290.0, 8.0, (50.0, 620.0), (15.0, 15.0), 0.002),
        _Stripe("NUVC", 1875.0, 0.037, 420.0, 8.0, (70.0, 640.0), (15.0, 15.0), 0.002)),
    ("NUV", "G230L", 2950): (
        _Stripe("NUVA", 1650.0, 0.39, 190.0, 8.0, (30.0, 600.0), (15.0, 15.0), 0.002),
        _Stripe("NUVB", 2050.0, 0.39, 290.0, 8.0, (50.0, 620.0), (15.0, 15.0), 0.002),
        _Stripe("NUVC", 2450.0, 0.39, 420.0, 8.0, (70.0, 640.0), (15.0, 15.0), 0.002)),
}
_DEFAULT = {"FUV": ("G130M", 1291), "NUV": ("G185M", 1850)}
_SDQFLAGS = 8346     # real COS headers (ldfd01vnq)
_FLAG_BIT = 8192     # DQ_GAIN_SAG_HOLE, in SDQFLAGS
_DPIXEL1 = 0.0078125  # 1/128: exactly representable, so pixel positions round-trip
_SHIFT1 = 12.5


def _rootname(seed: int, k: int) -> str:
    return f"lx{seed % 1000:03d}{k:02d}sq"


def _middles(detector: str) -> tuple[float, float]:
    """(source, background) x at which calcos quotes SP_LOC and B_BKG (extract.py)."""
    if detector == "FUV":
        return FUV_X / 2, FUV_X / 2
    return NUV_EXTENDED_X // 2 - NUV_X_OFFSET, NUV_X / 2


# Emission lines of an accreting source (Å, relative peak, σ Å) and interstellar
# absorption (Å, depth, σ Å): features that let the rawtag registration lock on.
_EMISSION = ((1175.7, 1.5, 0.8), (1238.8, 2.0, 0.6), (1242.8, 1.0, 0.6), (1334.5, 0.8, 0.5),
             (1393.8, 1.5, 0.6), (1402.8, 0.8, 0.6), (1548.2, 3.0, 0.8), (1550.8, 1.5, 0.8),
             (1640.4, 1.5, 1.0), (1855.0, 0.8, 1.0), (1862.8, 0.5, 1.0), (1892.0, 0.6, 1.2),
             (1908.7, 1.2, 1.2), (2796.4, 2.0, 1.5), (2803.5, 1.5, 1.5))
_ABSORPTION = ((1260.4, 0.8, 0.1), (1302.2, 0.6, 0.1), (1526.7, 0.7, 0.1), (1608.5, 0.6, 0.1),
               (1670.8, 0.8, 0.1), (2344.2, 0.6, 0.2), (2382.8, 0.7, 0.2), (2600.2, 0.7, 0.2))


def _line_profile(wavelength: np.ndarray) -> np.ndarray:
    shape = np.ones_like(wavelength)
    for center, peak, sigma in _EMISSION:
        shape += peak * np.exp(-0.5 * ((wavelength - center) / sigma) ** 2)
    for center, depth, sigma in _ABSORPTION:
        shape *= 1 - depth * np.exp(-0.5 * ((wavelength - center) / sigma) ** 2)
    return shape


def _layout(detector: str, stripe: _Stripe, flux_slope: float) -> SpectrumLayout:
    nelem = FUV_X if detector == "FUV" else NUV_EXTENDED_X
    x_offset = 0 if detector == "FUV" else NUV_X_OFFSET
    pixel = np.arange(nelem, dtype=np.float64) - x_offset + _DPIXEL1
    wavelength = stripe.wave0 + stripe.dispersion * pixel
    center = float(np.mean(wavelength))
    sens = sensitivity_curve(wavelength, peak_area_cm2=2500.0 if detector == "FUV" else 800.0,
                             peak_wavelength=center, width=0.6 * np.ptp(wavelength) + 1.0)
    flux = (wavelength / center) ** flux_slope * _line_profile(wavelength)
    source_mid, background_mid = _middles(detector)
    source = Region(stripe.sp_loc - stripe.slope * source_mid, stripe.sp_hgt, stripe.slope)
    backgrounds = tuple(Region(b - stripe.slope * background_mid, h, stripe.slope)
                        for b, h in zip(stripe.b_bkg, stripe.b_hgt))
    return SpectrumLayout(name=stripe.name, segment=FUV_SEGMENT_CODE.get(stripe.name, 0),
                          pixel=pixel, wavelength=wavelength, sensitivity=sens, flux=flux,
                          source=source, background=backgrounds,
                          profile_sigma=stripe.sp_hgt / 6)


def simulate_cos_timetag(out_dir: str | os.PathLike, *, detector: str = "FUV", count: int = 1,
                         seed: int = 0, exptime: float = 1000.0,
                         gti: list[tuple[float, float]] | None = None,
                         source_rate: float = 50.0, n_events: int | None = None,
                         background_rate: float = 1e-6, airglow: bool = True,
                         flagged_rate: float = 0.5, opt_elem: str | None = None,
                         cenwave: int | None = None, segments: str = "AB",
                         rawtag: bool = False, raw_offset: float = 37.25,
                         raw_stretch: float = -0.002, raw_dy: float = 3.0,
                         targname: str = "SIM-TARGET", start_mjd: float = 58000.0,
                         expflag: str = "NORMAL", model: LightcurveModel | str = "constant",
                         **model_params: Any) -> list[TimeTagTruth]:
    """Write ``count`` COS TIME-TAG exposures and return their truth.

    Parameters
    ----------
    out_dir : path
    detector : ``"FUV"`` or ``"NUV"``
    count, seed : int
        Exposures, and the seed of :func:`numpy.random.default_rng`.
    exptime : float
        Span of the exposure (s); the default GTIs leave a gap from 45 % to 55 % of it,
        and EXPTIME is the good time.
    gti : list of (start, stop), optional
    source_rate : float
        Quiescent source count rate (counts/s, all segments/stripes together).
    n_events : int, optional
        Instead of ``source_rate``: the expected number of source events.
    background_rate, flagged_rate : float
        Dark counts/s/pixel; flagged (DQ 8192 ∈ SDQFLAGS) counts/s per spectrum.
    airglow : bool
        Inject Lyα and O I where they fall on a segment.
    opt_elem, cenwave : optional
        A key of :data:`SETTINGS` (default G130M/1291 FUV, G185M/1850 NUV).
    segments : str
        FUV segments to write (``"AB"``, ``"A"``, ``"B"``).
    rawtag : bool
        Write FUV rawtag files instead of corrtags (see the module docstring).
    model : LightcurveModel or str
        A model, or its kind with the parameters as keywords (``model="sinusoid",
        period=..., amplitude=...``; ``flare``: time, amplitude, decay; ``eclipse``:
        start, duration, depth).
    """
    detector = detector.upper()
    if detector not in _DEFAULT:
        raise ValueError(f"detector must be FUV or NUV, got {detector!r}")
    opt_elem = (opt_elem or _DEFAULT[detector][0]).upper()
    cenwave = int(cenwave or _DEFAULT[detector][1])
    key = (detector, opt_elem, cenwave)
    if key not in SETTINGS:
        raise ValueError(f"no simulated COS setting {key}; known: {sorted(SETTINGS)}")
    if rawtag and detector != "FUV":
        raise ValueError("rawtag simulation is for the FUV only")
    stripes = [s for s in SETTINGS[key]
               if detector == "NUV" or s.name[-1] in segments.upper()]
    if not stripes:
        raise ValueError(f"no segment of {key} selected by segments={segments!r}")
    unknown = set(model_params) - {"period", "amplitude", "time", "decay", "start",
                                   "duration", "depth", "flare_time", "flare_amplitude",
                                   "eclipse_start", "eclipse_duration", "eclipse_depth"}
    if unknown:
        raise ValueError(f"unknown simulator argument(s) {sorted(unknown)}")
    if not isinstance(model, LightcurveModel):
        model = model_from_options({**model_params, "model": model})
    gti_array = np.asarray(gti if gti is not None else
                           [(0.0, 0.45 * exptime), (0.55 * exptime, exptime)], dtype=np.float64)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if n_events is not None:
        integral = float(np.sum(model.cumulative(gti_array[:, 1])
                                - model.cumulative(gti_array[:, 0])))
        source_rate = float(n_events) / integral
    # flux in erg s-1 cm-2 A-1 such that sum(flux * sensitivity) = source_rate
    layouts = [_layout(detector, s, -1.5) for s in stripes]
    scale = source_rate / sum(float(layout.net_rate.sum()) for layout in layouts)
    layouts = [replace(layout, flux=layout.flux * scale) for layout in layouts]
    truths = []
    seeds = np.random.SeedSequence(seed).spawn(int(count))
    for k in range(int(count)):
        truths.append(_one_exposure(
            out, _rootname(seed, k), detector, opt_elem, cenwave, stripes, layouts, gti_array,
            np.random.default_rng(seeds[k]), source_rate, background_rate,
            AIRGLOW_LINES if airglow else (), flagged_rate, model, rawtag,
            (raw_offset, raw_stretch, raw_dy), targname, start_mjd + 0.1 * k, expflag))
    write_truth(truths, out)
    return truths


def _one_exposure(out: Path, root: str, detector: str, opt_elem: str, cenwave: int,
                  stripes, layouts, gti, rng, source_rate, background_rate, airglow,
                  flagged_rate, model, rawtag, raw, targname, expstart, expflag) -> TimeTagTruth:
    if detector == "FUV":
        planes = [Plane(FUV_SEGMENT_CODE[s.name], (-0.5, FUV_X - 0.5), (-0.5, 1023.5))
                  for s in stripes]
    else:
        planes = [Plane(0, (-0.5, NUV_X - 0.5), (-0.5, 1023.5))]
    events = synthesize_events(layouts, planes, gti=gti, seed=rng, source_rate=source_rate,
                               model=model, background_rate=background_rate, airglow=airglow,
                               flagged_rate=flagged_rate, flag_bit=_FLAG_BIT,
                               time_dtype=np.float32)
    # positions as the file stores them (float32 XFULL/YFULL)
    events.x = events.x.astype(np.float32).astype(np.float64)
    events.y = events.y.astype(np.float32).astype(np.float64)
    if rawtag:
        offset, stretch, dy = raw
        raw_x = np.clip(np.floor(events.x - (offset + stretch * events.x) + 0.5), 0, FUV_X - 1)
        raw_y = np.clip(np.floor(events.y - dy + 0.5), 0, 1023)
        events.dq = events.dq * 0  # a rawtag carries no DQ; flagged events become ordinary
    exptime = float((gti[:, 1] - gti[:, 0]).sum())
    primary = _primary_header(root, detector, opt_elem, cenwave, targname)
    extraction_keys = _extraction_keywords(stripes, detector)
    files: list[Path] = []
    shares = np.array([layout.net_rate.sum() for layout in layouts])
    shares = shares / shares.sum()
    if detector == "FUV":
        groups = [(s.name, events.segment == FUV_SEGMENT_CODE[s.name]) for s in stripes]
    else:
        groups = [("NUV", np.ones(len(events), dtype=bool))]
    for name, mine in groups:
        suffix = ("rawtag" if rawtag else "corrtag") + \
            (f"_{name[-1].lower()}" if detector == "FUV" else "")
        path = out / f"{root}_{suffix}.fits"
        header = _events_header(expstart, exptime, gti, expflag, detector, name, stripes)
        if not rawtag:
            header.update(extraction_keys)
        else:
            for s in stripes:
                for k in extraction_keys:
                    if k.endswith(f"_{s.name[-1]}"):
                        header[k] = -999.0
        primary_seg = primary.copy()
        if detector == "FUV":
            primary_seg["SEGMENT"] = name
        if rawtag:
            table = _rawtag_table(events, mine, raw_x, raw_y, rng)
        else:
            table = _corrtag_table(events, mine, layouts, detector, rng)
        _write(path, primary_seg, table, header, gti)
        files.append(path)
    x1d_path = out / f"{root}_x1d.fits"
    _write_x1d(x1d_path, primary, layouts, stripes, events, detector, gti, exptime, expstart,
               background_rate, airglow, extraction_keys, model)
    files.append(x1d_path)

    extractions = [(layout.name, layout.segment, layout.source, layout.background)
                   for layout in layouts]
    if detector == "NUV" and opt_elem == "G230L":
        extractions = extractions[:2]  # the reader uses stripes A and B only (timetag.py)
    extraction, is_source, counts = region_truth(events.x, events.y, events.segment,
                                                 events.category, extractions)
    totals = {c: int((events.category == code).sum()) for c, code in CATEGORIES.items()}
    notes = ["rawtag: flagged events carry no DQ (a rawtag has no DQ column)"] if rawtag else []
    return TimeTagTruth(
        detector=f"cos_{detector.lower()}", rootname=root, files=files, exptime=exptime,
        expstart=expstart, gti=gti.copy(), model=model, source_rate=source_rate,
        source_share={layout.name: float(s) for layout, s in zip(layouts, shares)},
        background_rate=background_rate, sdqflags=_SDQFLAGS, flag_bit=_FLAG_BIT,
        counts=counts, totals=totals, expected=events.expected, events=events,
        extraction=extraction, is_source=is_source, notes=notes)


def _primary_header(root, detector, opt_elem, cenwave, targname) -> fits.Header:
    h = fits.Header()
    h["TELESCOP"] = "HST"
    h["INSTRUME"] = "COS"
    h["DETECTOR"] = detector
    h["ROOTNAME"] = root
    h["TARGNAME"] = targname
    h["RA_TARG"], h["DEC_TARG"] = 209.32, -9.54
    h["PROPOSID"] = 99999
    h["OBSTYPE"] = "SPECTROSCOPIC"
    h["OBSMODE"] = "TIME-TAG"
    h["EXPTYPE"] = "EXTERNAL/SCI"
    h["OPT_ELEM"] = opt_elem
    h["CENWAVE"] = cenwave
    h["APERTURE"] = "PSA"
    h["FPPOS"] = 3
    h["LIFE_ADJ"] = 4 if detector == "FUV" else -1
    h["XTRCTALG"] = "BOXCAR"
    h["CAL_VER"] = "hstcal-sim"
    return h


def _events_header(expstart, exptime, gti, expflag, detector, name, stripes) -> fits.Header:
    h = fits.Header()
    span = float(gti[-1, 1])
    h["EXPSTART"] = expstart
    h["EXPEND"] = expstart + span / 86400.0
    h["EXPTIME"] = exptime
    h["EXPFLAG"] = expflag
    if detector == "FUV":
        for s in ("A", "B"):
            h[f"EXPTIME{s}"] = exptime if any(st.name[-1] == s for st in stripes) else 0.0
    h["SDQFLAGS"] = _SDQFLAGS
    for s in stripes:
        h[f"SHIFT1{s.name[-1]}"] = _SHIFT1
        h[f"SHIFT2{s.name[-1]}"] = 0.0
        h[f"DPIXEL1{s.name[-1]}"] = _DPIXEL1
    return h


def _extraction_keywords(stripes, detector) -> dict[str, float]:
    keys: dict[str, float] = {}
    for s in stripes:
        letter = s.name[-1]
        keys[f"SP_LOC_{letter}"] = s.sp_loc
        keys[f"SP_HGT_{letter}"] = s.sp_hgt
        keys[f"SP_SLP_{letter}"] = s.slope
        keys[f"B_BKG1_{letter}"], keys[f"B_BKG2_{letter}"] = s.b_bkg
        keys[f"B_HGT1_{letter}"], keys[f"B_HGT2_{letter}"] = s.b_hgt
    return keys


def _lookup(x: np.ndarray, pixel: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation on the evenly spaced ``pixel`` grid (O(1) per event; 0 off it)."""
    step = pixel[1] - pixel[0]
    position = (x - pixel[0]) / step
    index = np.floor(position).astype(np.int64)
    ok = (index >= 0) & (index < len(pixel) - 1)
    index = np.where(ok, index, 0)
    frac = position - index
    return np.where(ok, values[index] + frac * (values[index + 1] - values[index]), 0.0)


def _event_wavelength(events, mine, layouts, detector) -> np.ndarray:
    """WAVELENGTH as calcos computes it: the dispersion of the segment (FUV) or of the
    nearest stripe (NUV); 0 where off the solution (calcos leaves 0)."""
    x = events.x[mine]
    y = events.y[mine]
    seg = events.segment[mine]
    wavelength = np.zeros(len(x))
    if detector == "FUV":
        for layout in layouts:
            this = seg == layout.segment
            wavelength[this] = _lookup(x[this], layout.pixel, layout.wavelength)
        return wavelength
    centers = np.stack([layout.source.center + layout.source.slope * x for layout in layouts])
    nearest = np.argmin(np.abs(centers - y[None, :]), axis=0)
    for k, layout in enumerate(layouts):
        this = nearest == k
        wavelength[this] = _lookup(x[this], layout.pixel, layout.wavelength)
    return wavelength


def _table(columns: list[tuple[str, str, np.ndarray]], units: dict[str, str]) -> fits.BinTableHDU:
    """A BinTableHDU over one big-endian record array filled column by column (no
    per-column copies or byte swaps at write time: 10 million events in seconds)."""
    n = len(columns[0][2])
    data = np.empty(n, dtype=[(name, ">" + code) for name, code, _ in columns])
    for name, _, values in columns:
        data[name] = values
    hdu = fits.BinTableHDU(data=data, name="EVENTS")
    for k, (name, _, _) in enumerate(columns, start=1):
        if name in units:
            hdu.header[f"TUNIT{k}"] = units[name]
    return hdu


def _corrtag_table(events, mine, layouts, detector, rng) -> fits.BinTableHDU:
    n = int(mine.sum())
    x = events.x[mine]
    y = events.y[mine]
    xcorr = (x + _SHIFT1).astype(np.float32)
    limit = FUV_X - 1 if detector == "FUV" else NUV_X - 1
    return _table([
        ("TIME", "f4", events.time[mine]),
        ("RAWX", "i2", np.clip(np.floor(xcorr + 0.5), 0, limit)),
        ("RAWY", "i2", np.clip(np.floor(y + 0.5), 0, 1023)),
        ("XCORR", "f4", xcorr),
        ("YCORR", "f4", y),
        ("XDOPP", "f4", xcorr),
        ("XFULL", "f4", x),
        ("YFULL", "f4", y),
        ("WAVELENGTH", "f4", _event_wavelength(events, mine, layouts, detector)),
        ("EPSILON", "f4", np.ones(n, np.float32)),
        ("DQ", "i2", events.dq[mine]),
        ("PHA", "u1", rng.integers(3, 21, n, dtype=np.uint8)),
    ], {"TIME": "s", "WAVELENGTH": "angstrom"})


def _rawtag_table(events, mine, raw_x, raw_y, rng) -> fits.BinTableHDU:
    n = int(mine.sum())
    return _table([
        ("TIME", "f4", events.time[mine]),
        ("RAWX", "i2", raw_x[mine]),
        ("RAWY", "i2", raw_y[mine]),
        ("PHA", "u1", rng.integers(3, 21, n, dtype=np.uint8)),
    ], {"TIME": "s"})


def _write(path: Path, primary: fits.Header, table: fits.BinTableHDU, header: fits.Header,
           gti: np.ndarray) -> None:
    table.header.update(header)
    gti_hdu = fits.BinTableHDU.from_columns(
        [fits.Column("START", "D", unit="s", array=gti[:, 0]),
         fits.Column("STOP", "D", unit="s", array=gti[:, 1])], name="GTI")
    hdul = fits.HDUList([fits.PrimaryHDU(header=primary), table, gti_hdu])
    with atomic_path(path) as tmp:
        hdul.writeto(tmp, overwrite=True)


def _airglow_rate(layout: SpectrumLayout, airglow) -> np.ndarray:
    """Expected airglow counts/s per element inside the source box."""
    from scipy.special import ndtr

    edges = np.concatenate([[layout.wavelength[0] - 0.5 * (layout.wavelength[1]
                                                           - layout.wavelength[0])],
                            0.5 * (layout.wavelength[1:] + layout.wavelength[:-1]),
                            [layout.wavelength[-1] + 0.5 * (layout.wavelength[-1]
                                                            - layout.wavelength[-2])]])
    bottom, top = layout.rows()
    in_box = layout.source.height / (top - bottom)
    rate = np.zeros(len(layout.wavelength))
    lo, hi = layout.wavelength.min(), layout.wavelength.max()
    for line in airglow:
        if lo + 3 * line.sigma <= line.wavelength <= hi - 3 * line.sigma:
            rate += line.rate * in_box * np.abs(np.diff(ndtr((edges - line.wavelength)
                                                             / line.sigma)))
    return rate


def _write_x1d(path, primary, layouts, stripes, events, detector, gti, exptime, expstart,
               background_rate, airglow, extraction_keys, model) -> None:
    nelem = len(layouts[0].pixel)
    # NET is the exposure-mean rate: quiescent × mean of the lightcurve model over the GTIs
    mean_factor = float(np.sum(model.cumulative(gti[:, 1]) - model.cumulative(gti[:, 0]))) \
        / exptime
    rows = []
    for layout in layouts:
        inside = (events.segment == layout.segment) & (events.dq == 0)
        x, y = events.x[inside], events.y[inside]
        mid = layout.source.center + layout.source.slope * x
        in_box = (y - mid >= -0.5 * layout.source.height) & (y - mid < 0.5 * layout.source.height)
        element = np.floor(x[in_box] - layout.pixel[0] + 0.5).astype(np.int64)
        element = element[(element >= 0) & (element < nelem)]
        gcounts = np.bincount(element, minlength=nelem).astype(np.float64)
        net = layout.net_rate * mean_factor + _airglow_rate(layout, airglow)
        rows.append((layout.name, net, net / layout.sensitivity, gcounts))
    names = np.array([r[0] for r in rows])
    net = np.stack([r[1] for r in rows])
    flux = np.stack([r[2] for r in rows])
    gcounts = np.stack([r[3] for r in rows])
    background = np.stack([np.full(nelem, background_rate * layout.source.height)
                           for layout in layouts])
    wavelength = np.stack([layout.wavelength for layout in layouts])
    fmt = f"{nelem}"
    cols = [
        fits.Column("SEGMENT", "4A", array=names),
        fits.Column("EXPTIME", "D", unit="s", array=np.full(len(rows), exptime)),
        fits.Column("NELEM", "J", array=np.full(len(rows), nelem)),
        fits.Column("WAVELENGTH", fmt + "D", unit="angstrom", array=wavelength),
        fits.Column("FLUX", fmt + "E", array=flux.astype(np.float32)),
        fits.Column("ERROR", fmt + "E",
                    array=(np.sqrt(gcounts) / exptime / np.stack(
                        [layout.sensitivity for layout in layouts])).astype(np.float32)),
        fits.Column("GROSS", fmt + "E", unit="count /s", array=(gcounts / exptime).astype(np.float32)),
        fits.Column("GCOUNTS", fmt + "E", unit="count", array=gcounts.astype(np.float32)),
        fits.Column("NET", fmt + "E", unit="count /s", array=net.astype(np.float32)),
        fits.Column("BACKGROUND", fmt + "E", unit="count /s", array=background.astype(np.float32)),
        fits.Column("DQ", fmt + "I", array=np.zeros((len(rows), nelem), np.int16)),
        fits.Column("DQ_WGT", fmt + "E", array=np.ones((len(rows), nelem), np.float32)),
    ]
    table = fits.BinTableHDU.from_columns(cols, name="SCI")
    h = table.header
    h["EXPSTART"] = expstart
    h["EXPEND"] = expstart + float(gti[-1, 1]) / 86400.0
    h["EXPTIME"] = exptime
    h["EXPFLAG"] = "NORMAL"
    h["SDQFLAGS"] = _SDQFLAGS
    h["X_OFFSET"] = 0 if detector == "FUV" else NUV_X_OFFSET
    for s in stripes:
        h[f"SHIFT1{s.name[-1]}"] = _SHIFT1
        h[f"DPIXEL1{s.name[-1]}"] = _DPIXEL1
    h.update(extraction_keys)
    hdul = fits.HDUList([fits.PrimaryHDU(header=primary), table])
    with atomic_path(path) as tmp:
        hdul.writeto(tmp, overwrite=True)


def simulate(out_dir: str | os.PathLike, *, kind: str = "timetag", detector: str = "FUV",
             **kwargs: Any) -> list[TimeTagTruth]:
    """The ``cos_fuv``/``cos_nuv`` simulator (``hstcal simulate --kind timetag``)."""
    if kind != "timetag":
        raise StageNotSupportedError(
            f"simulation of kind {kind!r} is not supported by plugin hstcal-cos for detector "
            f"cos_{detector.lower()} (supported kinds: timetag)")
    for name in ("gain", "binning", "start_mjd"):
        value = kwargs.pop(name, None)
        if name == "start_mjd" and value is not None:
            kwargs["start_mjd"] = float(value)
    for name in ("count", "seed", "cenwave", "n_events"):
        if name in kwargs and kwargs[name] is not None:
            kwargs[name] = int(kwargs[name])
    for name in ("exptime", "source_rate", "background_rate", "flagged_rate"):
        if name in kwargs:
            kwargs[name] = float(kwargs[name])
    for name in ("airglow", "rawtag"):
        if isinstance(kwargs.get(name), str):
            kwargs[name] = kwargs[name].strip().lower() in ("1", "true", "yes", "on")
    return simulate_cos_timetag(out_dir, detector=detector, **kwargs)
