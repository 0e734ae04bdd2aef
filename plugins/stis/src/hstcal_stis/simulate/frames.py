"""Synthetic STIS CCD raw biases and darks, with the truth that went into them.

Every file has the flight layout of :func:`hstcal_stis.geometry.raw_shape` for amp D
(serial overscan on the left and right, virtual overscan rows at the bottom) and is
written like a real ``_raw.fits``: uint16 SCI stored as int16 + BZERO 32768, empty
ERR/DQ extensions (NAXIS = 0, PIXVALUE), real keyword names.  One imset is

    DN = level(row) + structure + [Poisson(dark · f(T) · EXPTIME) + CR] / ATODGAIN + RN/ATODGAIN

* ``level(row)``: the amplifier bias (1124 DN gain 1, 1500 DN gain 4, CCDOFFST=3)
  plus a per-imset offset and linear trend along rows, in the science area *and*
  the overscan, so BLEVCORR can remove it;
* ``structure``: a fixed bias pattern (smooth shape, column and pixel patterns,
  hot columns, hot bias pixels) that depends only on (gain, binning) and
  :data:`DETECTOR_SEED`, never on the call's seed — the target of a superbias;
* dark current (darks only): ~0.03 e⁻/s with a gentle gradient along rows, hot
  pixels and hot columns, scaled by ``f(T) = 1 + 0.07 (OCCDHTAV − 18)`` (STIS TIR
  2004-01, IHB §7.3.1); truth rates are at 18 °C;
* cosmic rays over ``EXPTIME + READOUT/2`` (a bias collects them only while it is
  read out, on average half the 29 s readout);
* read noise (IHB §7.2, CCDTAB amp D), rounding, clipping to 0..65535.

Everything is drawn at unbinned resolution on the 1024×1024 sensitive area and
summed into binned pixels the way the serial register does (binned columns at the
illuminated edge mix overscan and sky, as ``findover.c`` describes).  Truth is
given in *trimmed binned* coordinates, ``raw[trim_rows, trim_cols]``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from hstcal_core.simulate import (
    HST_CR_RATE,
    HotColumns,
    HotPixels,
    make_cosmic_rays,
    rebin,
    render,
)

from ..detectors import STIS_CCD
from ..geometry import CCD_NPIX
from hstcal_core.fitsio import atomic_path
from .checks import _check_float, _check_int
from .detector_model import DETECTOR_SEED, _T_COEF, _T_REF, _bias_structure, _dark_model
from .headers import (
    _BASE36,
    _base36,
    _empty_hdu,
    _ext_header,
    _iso,
    _primary_header,
    _program_id,
)
from .layout import _AMP, _layout, parse_binning
from .truth import KINDS, SimTruth

log = logging.getLogger(__name__)

_KIND_CODE = {"bias": 1, "dark": 2}
_DEFAULT_NIMSETS = {"bias": 2, "dark": 1}
# 1100 s: the long darks of the STIS CCD dark monitor (14 a week, STIS ISR 2012-02).
_DEFAULT_EXPTIME = {"bias": 0.0, "dark": 1100.0}
_IMSET_OVERHEAD_S = 60.0  # readout (29 s, IHB §7.2) + buffer dump between repeats, approximate


def simulate_stis_ccd(
    out_dir: str | os.PathLike,
    *,
    kind: str = "bias",
    count: int = 4,
    seed: int = 0,
    gain: int = 1,
    binning: str = "1x1",
    start_mjd: float = 55600.0,
    nimsets: int | None = None,
    exptime: float | None = None,
    cadence_days: float = 1.0,
    start_times_mjd: Sequence[float] | None = None,
    cr_rate_per_cm2_s: float = HST_CR_RATE,
    dark_rate_e_s: float = 0.03,
    dark_gradient: float = 0.2,
    hot_pixel_fraction: float = 0.003,
    hot_pixel_range: tuple[float, float] = (0.02, 5.0),
    hot_columns: int = 4,
    hot_column_range: tuple[float, float] = (0.01, 0.1),
    hot_pixel_growth_per_day: float = 0.0,
    temperature_c: tuple[float, float] = (18.0, 3.0),
    program_id: str | None = None,
    detector_seed: int = DETECTOR_SEED,
    truth_name: str = "truth",
) -> SimTruth:
    """Write ``count`` synthetic STIS CCD raw biases or darks and their truth.

    Parameters
    ----------
    out_dir : path
        Output directory (created); receives ``<rootname>_raw.fits`` files and
        ``<truth_name>.json`` / ``<truth_name>.npz``.
    kind : {"bias", "dark"}
        TARGNAME of the files.
    count : int
        Number of files (1..1296).
    seed : int
        Seed of everything that varies between calls (noise, CRs, temperatures,
        dark hot pixels); the bias structure depends only on ``detector_seed``.
    gain : {1, 4}
        CCDGAIN; amp D constants from :data:`hstcal_stis.detectors.STIS_CCD`.
    binning : {"1x1", "1x2", "2x1", "2x2"}
        ``BINAXIS1xBINAXIS2``.
    start_mjd, cadence_days : float
        File ``i`` starts at ``start_mjd + i·cadence_days`` ...
    start_times_mjd : sequence of float, optional
        ... unless explicit start times (one per file) are given.
    nimsets : int, optional
        Imsets per file (NRPTEXP); default 2 for biases, 1 for darks.
    exptime : float, optional
        EXPTIME per imset, s; default 0 for biases (must be 0), 1100 for darks.
    cr_rate_per_cm2_s : float
        Cosmic-ray flux, cm⁻² s⁻¹.
    dark_rate_e_s, dark_gradient : float
        Mean dark current at 18 °C (e⁻/s) and its fractional change from the bottom
        to the top of the detector (higher at the bottom).  The rate grows with
        radiation damage (IHB §7.3.1: 0.0015 e⁻/s at launch, 0.004 by 2001; STIS ISR
        2012-02 for the post-SM4 rise); 0.03 stands for a recent epoch.
    hot_pixel_fraction, hot_pixel_range : float, (float, float)
        Fraction of hot pixels and the range of their excess (e⁻/s, log-uniform).
    hot_columns, hot_column_range : int, (float, float)
        Number of dark hot columns and their per-pixel excess range (e⁻/s).
    hot_pixel_growth_per_day : float
        Fraction of pixels turning hot per day during the series (0: the hot-pixel
        population is constant); their onset times are in the truth.
    temperature_c : (float, float)
        Mean and sigma of the per-imset OCCDHTAV, °C (housing temperatures of
        Side-2 operation scatter by a few degrees around the 18 °C reference of
        STIS TIR 2004-01).
    program_id : str, optional
        Three base-36 characters for ROOTNAME ``o<ppp><ss>01<t>``; derived from
        (kind, gain, binning, seed) by default.
    detector_seed : int
        Seed of the fixed bias structure.
    truth_name : str
        Stem of the truth files.

    Returns
    -------
    SimTruth
        The files written and everything that went into them (also saved).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    count = _check_int("count", count, 1, 36**2)
    seed = _check_int("seed", seed, 0)
    gain = _check_int("gain", gain, 1)
    if gain not in STIS_CCD.gains:
        raise ValueError(f"gain must be one of {list(STIS_CCD.gains)}, got {gain!r}")
    binx, biny = parse_binning(binning)
    binning = f"{binx}x{biny}"
    nimsets = _check_int("nimsets", _DEFAULT_NIMSETS[kind] if nimsets is None else nimsets, 1, 99)
    exptime = _check_float("exptime", _DEFAULT_EXPTIME[kind] if exptime is None else exptime,
                           low=0.0)
    if kind == "bias" and exptime != 0.0:
        raise ValueError(f"exptime must be 0 for kind='bias', got {exptime!r}")
    if kind == "dark" and exptime <= 0.0:
        raise ValueError(f"exptime must be > 0 for kind='dark', got {exptime!r}")
    start_mjd = _check_float("start_mjd", start_mjd)
    cadence_days = _check_float("cadence_days", cadence_days, low=0.0, strict=True)
    if start_times_mjd is None:
        starts = start_mjd + cadence_days * np.arange(count)
    else:
        starts = np.asarray([_check_float("start_times_mjd", t) for t in start_times_mjd])
        if starts.size != count:
            raise ValueError(f"start_times_mjd must have count={count} entries, got {starts.size}")
    cr_rate = _check_float("cr_rate_per_cm2_s", cr_rate_per_cm2_s, low=0.0)
    dark_rate_e_s = _check_float("dark_rate_e_s", dark_rate_e_s, low=0.0)
    dark_gradient = _check_float("dark_gradient", dark_gradient, low=-2.0)
    if abs(dark_gradient) >= 2.0:
        raise ValueError(f"dark_gradient must be within (-2, 2), got {dark_gradient!r}")
    hot_pixel_fraction = _check_float("hot_pixel_fraction", hot_pixel_fraction, low=0.0)
    if hot_pixel_fraction > 1.0:
        raise ValueError(f"hot_pixel_fraction must be within [0, 1], got {hot_pixel_fraction!r}")
    for name, bounds in (("hot_pixel_range", hot_pixel_range),
                         ("hot_column_range", hot_column_range)):
        if (len(bounds) != 2 or not 0 < float(bounds[0]) <= float(bounds[1])
                or not math.isfinite(float(bounds[1]))):
            raise ValueError(f"{name} must be (low, high) with 0 < low <= high, got {bounds!r}")
    hot_columns = _check_int("hot_columns", hot_columns, 0, CCD_NPIX)
    growth = _check_float("hot_pixel_growth_per_day", hot_pixel_growth_per_day, low=0.0)
    if len(temperature_c) != 2 or float(temperature_c[1]) < 0:
        raise ValueError(f"temperature_c must be (mean, sigma >= 0), got {temperature_c!r}")
    prog = _program_id(kind, gain, binning, seed) if program_id is None else str(program_id)
    if len(prog) != 3 or any(c not in _BASE36 for c in prog):
        raise ValueError(f"program_id must be 3 lowercase alphanumerics, got {program_id!r}")
    detector_seed = _check_int("detector_seed", detector_seed, 0)
    if not isinstance(truth_name, str) or not truth_name or Path(truth_name).name != truth_name:
        raise ValueError(f"truth_name must be a plain file stem, got {truth_name!r}")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    layout = _layout(binx, biny)
    amp = STIS_CCD.amplifier(gain, _AMP)
    readout_s = float(STIS_CCD.readout_time_s)
    structure, bias_hot, bias_cols = _bias_structure(gain, layout, detector_seed)
    step_days = (exptime + _IMSET_OVERHEAD_S) / 86400.0
    expstart = starts[:, None] + step_days * np.arange(nimsets)[None, :]
    expend = expstart + exptime / 86400.0

    dark = None
    if kind == "dark":
        dark = _dark_model(
            np.random.default_rng([seed, 0xDA4C]), dark_rate_e_s=dark_rate_e_s,
            dark_gradient=dark_gradient, hot_pixel_fraction=hot_pixel_fraction,
            hot_pixel_range=tuple(map(float, hot_pixel_range)), hot_columns=hot_columns,
            hot_column_range=tuple(map(float, hot_column_range)),
            hot_pixel_growth_per_day=growth, span_mjd=(float(expstart.min()), float(expend.max())))

    ny, nx = layout.raw_shape
    rows = np.arange(ny, dtype=np.float64)
    trend_shape = (rows - (ny - 1) / 2.0) / (ny - 1)
    temperature = np.zeros((count, nimsets))
    offset = np.zeros((count, nimsets))
    trend = np.zeros((count, nimsets))
    crs_truth: list[tuple] = []
    files, rootnames = [], []
    t_mean, t_sigma = float(temperature_c[0]), float(temperature_c[1])
    for i in range(count):
        rng = np.random.default_rng([seed, _KIND_CODE[kind], gain, binx, biny, i])
        visit = _base36(i, 2)
        rootname = f"o{prog}{visit}01{'0' if nimsets > 1 else 'q'}"
        hdus = [fits.PrimaryHDU.fromstring(_primary_header(
            kind=kind, rootname=rootname, gain=gain, binx=binx, biny=biny, nimsets=nimsets,
            expstart=expstart[i], expend=expend[i], exptime=exptime,
            seed=seed).tostring().encode())]
        for k in range(nimsets):
            temperature[i, k] = t_mean + t_sigma * rng.standard_normal()
            # Bias drifts a little between imsets and along the readout (a few DN).
            offset[i, k] = rng.normal(0.0, 1.0)
            trend[i, k] = 3.0 + rng.normal(0.0, 0.5)
            electrons = np.zeros(layout.raw_shape)
            if dark is not None:
                factor = max(0.0, 1.0 + _T_COEF * (temperature[i, k] - _T_REF))
                expected = layout.to_raw(dark.rate_at(float(expstart[i, k])) * factor * exptime)
                electrons += rng.poisson(expected)
            crs = make_cosmic_rays((CCD_NPIX, CCD_NPIX), exptime + 0.5 * readout_s, cr_rate,
                                   STIS_CCD.pixel_pitch_um, rng)
            binned = rebin(crs, biny, binx, offset_y=layout.lead_y, offset_x=layout.lead_x,
                           shape=layout.raw_shape)
            electrons += render(binned)
            crs_truth.append((i, k, binned, crs.length_px))
            level = amp.bias + offset[i, k] + trend[i, k] * trend_shape
            image = np.repeat(level[:, None], nx, axis=1)
            layout.trim(image)[...] += structure
            image += electrons / amp.gain
            image += rng.normal(0.0, amp.read_noise / amp.gain, image.shape)
            sci = np.clip(np.rint(image), 0, 65535).astype(np.uint16)
            expname = f"o{prog}{visit}{_base36(k + 1, 2)}q"
            t_k = _iso(float(expstart[i, k]))
            sci_cards = _ext_header("SCI", k + 1, rootname=rootname, expname=expname,
                                    layout=layout, data=True)
            sci_cards += [("DATE-OBS", t_k.strftime("%Y-%m-%d"), "UT date of start of observation"),
                          ("TIME-OBS", t_k.strftime("%H:%M:%S"), "UT time of start of observation"),
                          ("EXPSTART", float(expstart[i, k]), "exposure start time (MJD)"),
                          ("EXPEND", float(expend[i, k]), "exposure end time (MJD)"),
                          ("EXPTIME", float(exptime), "exposure duration (seconds)--calculated"),
                          ("EXPFLAG", "NORMAL", "Exposure interruption indicator"),
                          ("NCOMBINE", 1, "number of image sets combined"),
                          ("OCCDHTAV", round(float(temperature[i, k]), 4),
                           "average CCD housing temperature (degC)"),
                          ("SDQFLAGS", int(STIS_CCD.extra["sdqflags_default"]),
                           "serious data quality flags")]
            hdus.append(fits.ImageHDU(data=sci, header=fits.Header(sci_cards)))
            for extname in ("ERR", "DQ"):
                hdus.append(_empty_hdu(_ext_header(extname, k + 1, rootname=rootname,
                                                   expname=expname, layout=layout, data=False)))
        path = out_dir / f"{rootname}_raw.fits"
        with atomic_path(path) as tmp:
            fits.HDUList(hdus).writeto(tmp, output_verify="exception", overwrite=True)
        files.append(path)
        rootnames.append(rootname)
        log.debug("wrote %s (%s, gain %d, %s, %d imsets)", path.name, kind, gain, binning, nimsets)

    truth = _assemble_truth(
        kind=kind, gain=gain, binning=binning, seed=seed, files=files, rootnames=rootnames,
        nimsets=nimsets, exptime=exptime, amp=amp, layout=layout, expstart=expstart,
        temperature=temperature, offset=offset, trend=trend, structure=structure,
        bias_hot=bias_hot, bias_cols=bias_cols, dark=dark, crs_truth=crs_truth,
        parameters=dict(kind=kind, count=count, seed=seed, gain=gain, binning=binning,
                        start_mjd=start_mjd, cadence_days=cadence_days,
                        start_times_mjd=[float(t) for t in starts], nimsets=nimsets,
                        exptime=exptime, cr_rate_per_cm2_s=cr_rate, dark_rate_e_s=dark_rate_e_s,
                        dark_gradient=dark_gradient, hot_pixel_fraction=hot_pixel_fraction,
                        hot_pixel_range=list(map(float, hot_pixel_range)), hot_columns=hot_columns,
                        hot_column_range=list(map(float, hot_column_range)),
                        hot_pixel_growth_per_day=growth,
                        temperature_c=[t_mean, t_sigma], program_id=prog,
                        detector_seed=detector_seed, readout_time_s=readout_s,
                        imset_overhead_s=_IMSET_OVERHEAD_S))
    truth.save(out_dir, truth_name)
    log.info("simulated %d STIS CCD %s file(s) (gain %d, %s) in %s", count, kind, gain, binning,
             out_dir)
    return truth


def _assemble_truth(*, kind, gain, binning, seed, files, rootnames, nimsets, exptime, amp, layout,
                    expstart, temperature, offset, trend, structure, bias_hot, bias_cols, dark,
                    crs_truth, parameters) -> SimTruth:
    ys, xs, qs, ids, cr_file, cr_extver, cr_len = [], [], [], [], [], [], []
    next_id = 0
    for i, k, binned, length in crs_truth:
        ty = binned.y - layout.trim_rows[0]
        tx = binned.x - layout.trim_cols[0]
        ny, nx = layout.trimmed_shape
        inside = (ty >= 0) & (ty < ny) & (tx >= 0) & (tx < nx)
        ys.append(ty[inside].astype(np.int16))
        xs.append(tx[inside].astype(np.int16))
        qs.append((binned.charge_e[inside] / amp.gain).astype(np.float32))
        ids.append((binned.cr_id[inside] + next_id).astype(np.int32))
        n = binned.n_crs
        cr_file.append(np.full(n, i, np.int32))
        cr_extver.append(np.full(n, k + 1, np.int16))
        cr_len.append(np.asarray(length, np.float32))
        next_id += n

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    fields: dict[str, Any] = {}
    if dark is not None:
        shape = layout.trimmed_shape
        fields["dark_rate"] = layout.trim(layout.to_raw(dark.static_rate)).astype(np.float32)
        hy, hx, hin = layout.to_trimmed(dark.hot_y, dark.hot_x)
        fields["dark_hot_pixels"] = HotPixels(hy[hin].astype(np.int32), hx[hin].astype(np.int32),
                                              dark.hot_excess[hin])
        fields["dark_hot_onset_mjd"] = dark.hot_onset_mjd[hin]
        _, cx, cin = layout.to_trimmed(np.zeros_like(dark.col_x), dark.col_x)
        cin &= (cx >= 0) & (cx < shape[1])
        # A binned pixel sums biny pixels of the column.
        fields["dark_hot_columns"] = HotColumns(cx[cin].astype(np.int32),
                                                dark.col_excess[cin] * layout.biny)
    return SimTruth(
        kind=kind, gain=gain, binning=binning, seed=seed, files=files, rootnames=rootnames,
        nimsets=nimsets, exptime_s=float(exptime), atodgain=float(amp.gain),
        read_noise_e=float(amp.read_noise), bias_dn=float(amp.bias),
        raw_shape=tuple(layout.raw_shape), trim_rows=tuple(layout.trim_rows),
        trim_cols=tuple(layout.trim_cols), expstart_mjd=expstart, temperature_c=temperature,
        bias_offset_dn=offset, bias_trend_dn=trend, bias_structure=structure,
        bias_hot_pixels=bias_hot, bias_hot_columns=bias_cols,
        cr_y=cat(ys, np.int16), cr_x=cat(xs, np.int16), cr_charge_dn=cat(qs, np.float32),
        cr_id=cat(ids, np.int32), cr_file=cat(cr_file, np.int32),
        cr_extver=cat(cr_extver, np.int16),
        cr_length_px=cat(cr_len, np.float32), parameters=parameters, **fields)
