"""Glue between exposures and the CR-rejection kernel: CRREJTAB rows, stacks, headers.

CRREJTAB row selection follows hstcal ``cs2/o_cal2_in.c``: among rows whose CRSPLIT
equals the number of images (capped at the table's largest CRSPLIT), take the one
with the smallest MEANEXP ≥ the mean exposure time.  Explicit parameters override
the row; without a table the documented defaults of :class:`CRRejectParams` apply.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
from astropy.io import fits

from .algorithms.crreject import CRRejectParams, crreject
from .detectors import Detector
from .errors import ConfigError, InputError
from .images import CombinedImage, Exposure
from .options import Options

__all__ = ["CRRejRow", "read_crrejtab", "select_crrejtab_row", "resolve_crreject_params",
           "combine_exposures", "exposure_noise"]

log = logging.getLogger(__name__)

_OVERRIDES = ("crsigmas", "crradius", "crthresh", "initgues", "skysub", "scalense", "badinpdq")


@dataclass(frozen=True)
class CRRejRow:
    """One CRREJTAB row."""

    crsplit: int
    meanexp: float
    params: CRRejectParams


@lru_cache(maxsize=16)
def _read_crrejtab_cached(path: str, mtime: float) -> tuple[CRRejRow, ...]:
    p = Path(path)
    try:
        with fits.open(p, memmap=False) as hdul:
            table = hdul[1].data
            names = {n.upper() for n in table.columns.names}
            need = {"CRSPLIT", "MEANEXP", "CRSIGMAS", "CRRADIUS", "CRTHRESH", "INITGUES",
                    "SKYSUB", "SCALENSE", "BADINPDQ"}
            missing = sorted(need - names)
            if missing:
                raise InputError(p, f"CRREJTAB lacks column(s) {', '.join(missing)}")
            rows = []
            for r in table:
                sigmas = tuple(float(s) for s in str(r["CRSIGMAS"]).replace(" ", "").split(",") if s)
                rows.append(CRRejRow(
                    crsplit=int(r["CRSPLIT"]), meanexp=float(r["MEANEXP"]),
                    params=CRRejectParams(
                        crsigmas=sigmas, crradius=float(r["CRRADIUS"]),
                        crthresh=float(r["CRTHRESH"]),
                        initgues=str(r["INITGUES"]).strip().lower(),
                        skysub=str(r["SKYSUB"]).strip().lower(),
                        scalense=float(r["SCALENSE"]), badinpdq=int(r["BADINPDQ"]))))
    except InputError:
        raise
    except (OSError, IndexError, KeyError, ValueError, TypeError) as exc:
        raise InputError(p, f"not a usable CRREJTAB ({type(exc).__name__}: {exc})") from None
    if not rows:
        raise InputError(p, "CRREJTAB has no rows")
    return tuple(rows)


def read_crrejtab(path: str | Path) -> tuple[CRRejRow, ...]:
    """Read every row of a CRREJTAB (cached per path and modification time)."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "CRREJTAB does not exist")
    return _read_crrejtab_cached(str(p.resolve()), p.stat().st_mtime)


def select_crrejtab_row(rows: Sequence[CRRejRow], n_images: int, mean_exptime: float,
                        path: str | Path = "CRREJTAB") -> CRRejRow:
    """The matching row (o_cal2_in.c): CRSPLIT = min(n, max CRSPLIT), smallest MEANEXP ≥ mean."""
    crsplit = min(n_images, max(r.crsplit for r in rows))
    candidates = [r for r in rows if r.crsplit == crsplit and r.meanexp - mean_exptime >= 0]
    if not candidates:
        raise InputError(path, f"no CRREJTAB row with CRSPLIT={crsplit} and "
                               f"MEANEXP >= {mean_exptime:.3f}")
    return min(candidates, key=lambda r: r.meanexp - mean_exptime)


def resolve_crreject_params(options: Options, n_images: int, mean_exptime: float,
                            *, spectroscopic: bool = False,
                            crflag: int | None = None) -> tuple[CRRejectParams, str]:
    """Parameters from the CRREJTAB row (if any), then explicit options on top.

    Returns the parameters and a short description of their origin.
    """
    table = options.get("crrejtab")
    if table:
        row = select_crrejtab_row(read_crrejtab(table), n_images, mean_exptime, table)
        base, origin = row.params, f"{Path(table).name} row CRSPLIT={row.crsplit} MEANEXP={row.meanexp}"
    else:
        base, origin = CRRejectParams(), "defaults"
    values = {f.name: getattr(base, f.name) for f in fields(CRRejectParams)}
    for key in _OVERRIDES:
        if options.get(key) is not None:
            values[key] = tuple(options[key]) if key == "crsigmas" else options[key]
    if spectroscopic and options.get("skysub") is None:
        values["skysub"] = "none"  # o_cal2_in.c: no sky subtraction for spectroscopy
    if crflag is not None:
        values["crflag"] = int(crflag)
    try:
        return CRRejectParams(**values), origin
    except ValueError as exc:
        raise ConfigError(f"cosmic-ray rejection parameters: {exc}") from None


def exposure_noise(exposure: Exposure, detector: Detector) -> tuple[float, float]:
    """(ATODGAIN, READNSE) of an exposure: header values, else the detector's constants."""
    gain = float(exposure.key("ATODGAIN", 0.0) or 0.0)
    rn = float(exposure.key("READNSE", 0.0) or 0.0)
    if gain <= 0 or rn <= 0:
        setting = exposure.key(detector.gain_keyword)
        try:
            amp = detector.amplifier(float(setting) if setting is not None else detector.gains[0],
                                     str(exposure.key("CCDAMP", "")).strip() or None)
        except KeyError as exc:
            raise InputError(exposure.path, str(exc.args[0])) from None
        gain = gain if gain > 0 else amp.gain
        rn = rn if rn > 0 else amp.read_noise
    return gain, rn


def combine_exposures(detector: Detector, exposures: Sequence[Exposure], options: Options,
                      *, spectroscopic: bool | None = None,
                      temperature_keyword: str | None = None) -> CombinedImage:
    """Stack every imset of ``exposures`` and run :func:`crreject` on it.

    Raises
    ------
    InputError
        Fewer than two imsets, or imsets of different shapes (naming the file).
    """
    if not exposures:
        raise InputError(None, "cosmic-ray rejection: no input exposures")
    imsets, sources, gains, noise = [], [], [], []
    for exp in exposures:
        gain, rn = exposure_noise(exp, detector)
        for ver, imset in enumerate(exp.imsets, start=1):
            if imset.header.get("IMSET_OK", True) is False:
                continue
            if imsets and imset.shape != imsets[0].shape:
                raise InputError(exp.path, f"SCI,{ver} has shape {imset.shape}, the first "
                                           f"input has {imsets[0].shape}")
            imsets.append(imset)
            sources.append((exp.rootname, ver))
            gains.append(gain)
            noise.append(rn / gain)
    if len(imsets) < 2:
        raise InputError(exposures[0].path,
                         f"cosmic-ray rejection needs at least 2 imsets, got {len(imsets)}")
    exptimes = np.array([i.exptime for i in imsets])
    if spectroscopic is None:
        spectroscopic = str(exposures[0].key("OBSTYPE", "")).strip().upper() == "SPECTROSCOPIC"
    scale = bool(options.get("scale_by_exptime", True))
    mean_exp = float(exptimes.mean()) if scale else 0.0
    # the DQ bit for "rejected in every image" is detector business (8192 on the CCDs,
    # but USER2 on NICMOS and a gain-sag hole on COS)
    params, origin = resolve_crreject_params(options, len(imsets), mean_exp,
                                             spectroscopic=spectroscopic,
                                             crflag=detector.extra.get("cr_flag"))
    # the images as they are: crreject stacks them only if it needs to (many images)
    result = crreject([i.sci for i in imsets], [i.dq for i in imsets], exptimes=exptimes,
                      read_noise_dn=noise, gains=gains, params=params, scale_by_exptime=scale)
    primary = exposures[0].primary.copy()
    header = imsets[0].header.copy()
    starts = [float(i.header.get("EXPSTART", exp.key("TEXPSTRT", 0.0)))
              for exp in exposures for i in exp.imsets]
    ends = [float(i.header.get("EXPEND", exp.key("TEXPEND", 0.0)))
            for exp in exposures for i in exp.imsets]
    primary["TEXPTIME"] = (result.texptime, "total exposure time of combined images")
    primary["TEXPSTRT"] = min(starts)
    primary["TEXPEND"] = max(ends)
    primary["NEXTEND"] = 3
    primary["CRCORR"] = "COMPLETE"
    primary["SKYSUM"] = (float(result.sky.sum()), "total sky level (DN)")
    if result.texptime > 0:
        primary["REJ_RATE"] = (result.n_rejected / result.texptime,
                               "cosmic ray impact rate (pixels/sec)")
    header["EXPTIME"] = result.texptime
    header["EXPSTART"] = min(starts)
    header["EXPEND"] = max(ends)
    header["NCOMBINE"] = (len(imsets), "number of image sets combined")
    if temperature_keyword:
        temps = np.array([float(i.header.get(temperature_keyword, -1.0)) for i in imsets])
        weights = exptimes if result.texptime > 0 else np.ones(len(imsets))
        mean_t = float(np.sum(temps * weights) / np.sum(weights))
        if mean_t > 0:
            header[temperature_keyword] = mean_t
    parameters = {"crsigmas": list(params.crsigmas), "crradius": params.crradius,
                  "crthresh": params.crthresh, "initgues": params.initgues,
                  "skysub": params.skysub, "scalense": params.scalense,
                  "badinpdq": params.badinpdq, "source": origin}
    primary.add_history(f"CR rejection of {len(imsets)} imsets: {parameters}")
    log.debug("combined %d imsets (%s), %d pixels rejected", len(imsets), origin,
              result.n_rejected)
    return CombinedImage(sci=result.sci, err=result.err, dq=result.dq, masks=result.masks,
                         sources=tuple(sources), texptime=result.texptime,
                         ncombine=len(imsets), primary=primary, header=header,
                         parameters=parameters, sky=tuple(float(s) for s in result.sky),
                         n_rejected=result.n_rejected)
