"""Synthetic calibrated CCD darks (FLT-like files) with the truth of every cosmic ray.

A detector-agnostic writer for the cosmic-ray census (issue 4): every CCD plugin
describes its chips once (:class:`DarkChip`, :class:`DarkLayout`) and gets files shaped
like calacs/calwf3 products of an internal dark, plus the ``_spt.fits`` companion the
census reads HST's orbit from.

Signal model, per chip and file (electrons, what an FLT holds after bias removal):

* **dark current**: Poisson of ``dark_e_per_s · EXPTIME`` everywhere, plus **hot
  pixels** — the same pixels in every file of a simulation (they are properties of the
  CCD) with a log-uniform excess rate; those above ``hot_flag_e_per_s`` carry DQ
  ``hot_dq`` (ACS/WFC3 flag 16, "hot pixel", as the pipeline's DARKFILE marks them);
* **cosmic rays** from :func:`~hstcal_core.simulate.cosmic_rays.make_cosmic_rays`
  (angle-dependent tracks, lognormal charge, diffusion) at ``cr_rate`` over
  EXPTIME + FLASHDUR;
* **read noise**: Gaussian, per amplifier (amplifiers split a chip into equal column
  blocks, left to right, as ACS/WFC3 full-frame readouts do);
* ERR is the noise model ``sqrt(RN² + max(signal, 0))``; with ``bunit="COUNTS"`` SCI and
  ERR are divided by each amplifier's gain (what calacs wrote before 2012).

What is *not* modelled: CTE trails, bias structure and telegraph pixels.

Files: ``<rootname>_flt.fits`` (primary + SCI/ERR/DQ per chip, EXTVER in the layout's
order) and ``<rootname>_spt.fits``; ``<truth_name>.json`` (what was simulated, per
file and chip) and ``<truth_name>.npz`` (every deposit: pixel, charge, CR id; every CR's
track; the hot pixels), read back with :func:`load_dark_truth`.  Orbital elements go into
the SPT header when :mod:`hstcal_core.algorithms.orbit` is available.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time

from ..detectors import Amplifier
from ..fitsio import atomic_path, write_atomic
from .cosmic_rays import DETECTABLE_E, HST_CR_RATE, CosmicRays, make_cosmic_rays, render
from .defects import HotPixels, make_hot_pixels

__all__ = ["DarkChip", "DarkLayout", "DarkTruth", "simulate_darks", "load_dark_truth",
           "dark_chip_electrons", "spt_header", "score_cr_masks"]

log = logging.getLogger(__name__)

_SECONDS_PER_DAY = 86400.0
_AMP_LETTERS = "ABCD"


@dataclass(frozen=True)
class DarkChip:
    """One chip of a dark file: a SCI/ERR/DQ imset.

    Attributes
    ----------
    extver : int
        EXTVER of its SCI/ERR/DQ extensions.
    ccdchip : int
        Value of the layout's ``chip_keyword`` in the SCI header.
    shape : tuple of int
        ``(ny, nx)`` of the (trimmed) array.
    amps : tuple of Amplifier
        Amplifiers reading it, left to right; each reads ``nx / len(amps)`` columns.
        ``read_noise`` in electrons, ``gain`` in e⁻/DN.
    header : mapping
        Further SCI keywords (``LTV1``, ``LTV2``, ...).
    """

    extver: int
    ccdchip: int
    shape: tuple[int, int]
    amps: tuple[Amplifier, ...]
    header: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        ny, nx = (int(s) for s in self.shape)
        if ny <= 0 or nx <= 0:
            raise ValueError(f"chip {self.ccdchip}: shape must be positive, got {self.shape}")
        if not self.amps:
            raise ValueError(f"chip {self.ccdchip}: at least one amplifier is required")
        if nx % len(self.amps):
            raise ValueError(f"chip {self.ccdchip}: {nx} columns do not split evenly over "
                             f"{len(self.amps)} amplifiers")
        object.__setattr__(self, "shape", (ny, nx))

    def amp_columns(self) -> list[tuple[Amplifier, slice]]:
        """Each amplifier with the columns it reads."""
        width = self.shape[1] // len(self.amps)
        return [(amp, slice(i * width, (i + 1) * width)) for i, amp in enumerate(self.amps)]


@dataclass(frozen=True)
class DarkLayout:
    """How one detector's dark files look: chips, keywords, units and signal levels.

    Attributes
    ----------
    instrument, detector : str
        INSTRUME and DETECTOR keywords.
    pixel_pitch_um : float
        Pixel pitch (sets the CR rate per pixel and the track lengths).
    chips : tuple of DarkChip
        In file order.
    ccdamp : str
        CCDAMP keyword (e.g. ``"ABCD"``, ``"C"``).
    gain_setting : float
        Value of ``gain_keyword`` (CCDGAIN).
    gain_keyword, chip_keyword : str
        Keyword names of the gain setting (primary) and of the chip number (SCI).
    bunit : str
        ``"ELECTRONS"`` or ``"COUNTS"`` (DN).
    rootname_prefix : str
        First letter(s) of the ROOTNAMEs (``j`` ACS, ``i`` WFC3, ``o`` STIS, ``u`` WFPC2).
    subarray : bool
        SUBARRAY keyword.
    flashdur : float
        FLASHDUR (post-flash seconds; CRs accumulate during it too).
    dark_e_per_s, hot_fraction, hot_e_per_s, hot_flag_e_per_s, hot_dq
        Dark current, hot-pixel fraction, their excess range (log-uniform, e⁻/s), the
        rate above which they are flagged and the flag.
    cr_rate : float
        Cosmic rays cm⁻² s⁻¹.
    cr_options : mapping
        Further :func:`make_cosmic_rays` arguments (``depth_um``, ``diffusion_sigma_px``...).
    primary : mapping
        Further primary keywords.
    amp_keywords : bool
        Write ``ATODGN<amp>`` / ``READNSE<amp>`` (ACS/WFC3 style) for every amplifier.
    """

    instrument: str
    detector: str
    pixel_pitch_um: float
    chips: tuple[DarkChip, ...]
    ccdamp: str
    gain_setting: float
    gain_keyword: str = "CCDGAIN"
    chip_keyword: str = "CCDCHIP"
    bunit: str = "ELECTRONS"
    rootname_prefix: str = "x"
    subarray: bool = False
    flashdur: float = 0.0
    dark_e_per_s: float = 0.01
    hot_fraction: float = 5e-4
    hot_e_per_s: tuple[float, float] = (0.02, 2.0)
    hot_flag_e_per_s: float = 0.14
    hot_dq: int = 16
    cr_rate: float = HST_CR_RATE
    cr_options: Mapping[str, Any] = field(default_factory=dict)
    primary: Mapping[str, Any] = field(default_factory=dict)
    amp_keywords: bool = True

    def __post_init__(self):
        if not self.chips:
            raise ValueError("a dark layout needs at least one chip")
        if self.bunit.upper() not in ("ELECTRONS", "COUNTS"):
            raise ValueError(f"bunit must be 'ELECTRONS' or 'COUNTS', got {self.bunit!r}")
        if len({c.extver for c in self.chips}) != len(self.chips):
            raise ValueError("chips must have distinct EXTVERs")

    def summary(self) -> dict:
        """JSON-friendly description, stored in the truth."""
        return {
            "instrument": self.instrument, "detector": self.detector,
            "pixel_pitch_um": self.pixel_pitch_um, "ccdamp": self.ccdamp,
            "gain_setting": self.gain_setting, "bunit": self.bunit.upper(),
            "subarray": self.subarray, "flashdur": self.flashdur,
            "dark_e_per_s": self.dark_e_per_s, "hot_fraction": self.hot_fraction,
            "hot_e_per_s": list(self.hot_e_per_s), "cr_rate": self.cr_rate,
            "cr_options": dict(self.cr_options),
            "chips": [{"extver": c.extver, "ccdchip": c.ccdchip, "shape": list(c.shape),
                       "amps": [{"name": a.name, "gain": a.gain, "read_noise": a.read_noise}
                                for a in c.amps]} for c in self.chips],
        }


@dataclass
class DarkTruth:
    """What went into a dark simulation.

    Attributes
    ----------
    files : list of str
        Names of the written ``_flt.fits`` files, in time order.
    rootnames : list of str
    exptime : list of float
    expstart : list of float
        EXPSTART (MJD) of each file.
    layout : dict
        :meth:`DarkLayout.summary`.
    crs : dict
        ``{(rootname, extver): CosmicRays}`` — every deposit in electrons.
    hot : dict
        ``{extver: HotPixels}`` (excess in e⁻/s), common to every file.
    parameters : dict
        The simulation arguments.
    """

    files: list[str]
    rootnames: list[str]
    exptime: list[float]
    expstart: list[float]
    layout: dict
    crs: dict[tuple[str, int], CosmicRays]
    hot: dict[int, HotPixels]
    parameters: dict = field(default_factory=dict)

    def cr_image(self, rootname: str, extver: int) -> np.ndarray:
        """Dense CR charge image (e⁻) of one imset."""
        return render(self.crs[(rootname.lower(), int(extver))])

    def save(self, out_dir: str | Path, name: str = "truth") -> tuple[Path, Path]:
        """Write ``<name>.json`` and ``<name>.npz`` into ``out_dir`` (atomically)."""
        out = Path(out_dir)
        arrays: dict[str, np.ndarray] = {}
        chips = []
        for (root, ver), crs in sorted(self.crs.items()):
            key = f"{root}_{ver}"
            for attr in ("y", "x", "charge_e", "cr_id", "y0", "x0", "length_px", "angle_rad"):
                arrays[f"cr_{key}_{attr}"] = getattr(crs, attr)
            chips.append({"rootname": root, "extver": ver, "key": key,
                          "shape": list(crs.shape), "n_crs": crs.n_crs,
                          "exposure_time_s": crs.exposure_time_s})
        for ver, hot in sorted(self.hot.items()):
            arrays[f"hot_{ver}_y"], arrays[f"hot_{ver}_x"] = hot.y, hot.x
            arrays[f"hot_{ver}_excess"] = hot.excess
        meta = {"files": self.files, "rootnames": self.rootnames, "exptime": self.exptime,
                "expstart": self.expstart, "layout": self.layout, "chips": chips,
                "hot_extvers": sorted(self.hot), "parameters": self.parameters}
        json_path, npz_path = out / f"{name}.json", out / f"{name}.npz"
        with atomic_path(npz_path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        with atomic_path(json_path) as tmp:
            tmp.write_text(json.dumps(meta, indent=1))
        return json_path, npz_path


def load_dark_truth(out_dir: str | Path, name: str = "truth") -> DarkTruth:
    """Read back what :meth:`DarkTruth.save` wrote."""
    out = Path(out_dir)
    meta = json.loads((out / f"{name}.json").read_text())
    with np.load(out / f"{name}.npz") as arrays:
        crs = {}
        for chip in meta["chips"]:
            k = chip["key"]
            crs[(chip["rootname"], int(chip["extver"]))] = CosmicRays(
                shape=tuple(chip["shape"]),
                **{attr: arrays[f"cr_{k}_{attr}"] for attr in
                   ("y", "x", "charge_e", "cr_id", "y0", "x0", "length_px", "angle_rad")},
                exposure_time_s=float(chip["exposure_time_s"]))
        hot = {int(v): HotPixels(arrays[f"hot_{v}_y"], arrays[f"hot_{v}_x"],
                                 arrays[f"hot_{v}_excess"]) for v in meta["hot_extvers"]}
    return DarkTruth(files=meta["files"], rootnames=meta["rootnames"], exptime=meta["exptime"],
                     expstart=meta["expstart"], layout=meta["layout"], crs=crs, hot=hot,
                     parameters=meta.get("parameters", {}))


# --------------------------------------------------------------------------- pixels
def dark_chip_electrons(chip: DarkChip, layout: DarkLayout, exptime: float, hot: HotPixels,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray,
                                                           np.ndarray, CosmicRays]:
    """One chip of one dark in electrons: ``(sci, err, dq, cosmic_rays)``.

    ``sci`` holds dark current, hot pixels, cosmic rays and read noise (bias removed);
    ``err`` the noise model; ``dq`` the hot-pixel flags.
    """
    crs = make_cosmic_rays(chip.shape, exptime + layout.flashdur, layout.cr_rate,
                           layout.pixel_pitch_um, rng, **dict(layout.cr_options))
    mean_dark = np.full(chip.shape, layout.dark_e_per_s * exptime, np.float64)
    if len(hot):
        mean_dark[hot.y, hot.x] += hot.excess * exptime
    signal = rng.poisson(mean_dark).astype(np.float32) + render(crs)
    read_noise = np.empty(chip.shape, np.float32)
    for amp, cols in chip.amp_columns():
        read_noise[:, cols] = amp.read_noise
    sci = signal + rng.standard_normal(chip.shape, dtype=np.float32) * read_noise
    err = np.sqrt(read_noise ** 2 + np.maximum(sci, 0)).astype(np.float32)
    dq = np.zeros(chip.shape, np.uint16)
    if len(hot):
        flagged = hot.excess >= layout.hot_flag_e_per_s
        dq[hot.y[flagged], hot.x[flagged]] |= np.uint16(layout.hot_dq)
    return sci.astype(np.float32), err, dq, crs


def _to_bunit(chip: DarkChip, layout: DarkLayout, sci: np.ndarray,
              err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if layout.bunit.upper() == "ELECTRONS":
        return sci, err
    sci, err = sci.copy(), err.copy()
    for amp, cols in chip.amp_columns():
        sci[:, cols] /= np.float32(amp.gain)
        err[:, cols] /= np.float32(amp.gain)
    return sci, err


# --------------------------------------------------------------------------- headers
def _rootname(prefix: str, seed: int, k: int) -> str:
    """A 9-character HST-like ROOTNAME: prefix, seed, file number, ``q``."""
    body = f"{prefix}{seed % 1000:03d}{k:04d}".lower()
    return body[:8].ljust(8, "0") + "q"


def _date_time(mjd: float) -> tuple[str, str]:
    iso = Time(mjd, format="mjd", scale="utc").isot
    return iso[:10], iso[11:19]


def _primary_header(layout: DarkLayout, root: str, exptime: float, start: float,
                    end: float) -> fits.Header:
    date_obs, time_obs = _date_time(start)
    hdr = fits.Header()
    hdr["NEXTEND"] = 3 * len(layout.chips)
    hdr["FILENAME"] = f"{root}_flt.fits"
    hdr["FILETYPE"] = "SCI"
    hdr["TELESCOP"] = "HST"
    hdr["INSTRUME"] = layout.instrument
    hdr["DETECTOR"] = layout.detector
    hdr["ROOTNAME"] = root
    hdr["IMAGETYP"] = "DARK"
    hdr["OBSTYPE"] = "INTERNAL"
    hdr["TARGNAME"] = "DARK"
    hdr["DATE-OBS"] = date_obs
    hdr["TIME-OBS"] = time_obs
    hdr["EXPSTART"] = (start, "exposure start time (Modified Julian Date)")
    hdr["EXPEND"] = (end, "exposure end time (Modified Julian Date)")
    hdr["EXPTIME"] = (float(exptime), "exposure duration (seconds)")
    hdr["EXPFLAG"] = "NORMAL"
    hdr["FLASHDUR"] = (float(layout.flashdur), "post-flash duration (seconds)")
    hdr["QUALCOM1"] = ""
    hdr["QUALCOM2"] = ""
    hdr["QUALCOM3"] = ""
    hdr["QUALITY"] = ""
    hdr["SUBARRAY"] = bool(layout.subarray)
    hdr["CCDAMP"] = layout.ccdamp
    hdr[layout.gain_keyword] = layout.gain_setting
    hdr["CRSPLIT"] = 1
    hdr["NRPTEXP"] = 1
    for switch in ("BLEVCORR", "BIASCORR", "FLSHCORR"):
        hdr[switch] = "COMPLETE"
    hdr["DARKCORR"] = "OMIT"
    hdr["CRCORR"] = "OMIT"
    if layout.amp_keywords:
        amps = {a.name: a for c in layout.chips for a in c.amps}
        for letter in _AMP_LETTERS:
            amp = amps.get(letter)
            hdr[f"ATODGN{letter}"] = 0.0 if amp is None else amp.gain
        for letter in _AMP_LETTERS:
            amp = amps.get(letter)
            hdr[f"READNSE{letter}"] = 0.0 if amp is None else amp.read_noise
    for key, value in layout.primary.items():
        hdr[key] = value
    hdr.add_history("Synthetic dark written by hstcal_core.simulate.darks (not HST data)")
    return hdr


def spt_header(layout_or_instrument, root: str, start_mjd: float) -> fits.Header:
    """Primary header of an ``_spt.fits`` companion, with orbital elements if available.

    The elements come from ``hstcal_core.algorithms.orbit`` (``orbit_keywords(
    elements_at_epoch(REFERENCE_ELEMENTS, start_mjd))``): HST's reference orbit
    propagated to the exposure.  Without that module the SPT carries no orbit and the
    census records no track (it logs why).
    """
    instrument = getattr(layout_or_instrument, "instrument", layout_or_instrument)
    hdr = fits.Header()
    hdr["FILENAME"] = f"{root}_spt.fits"
    hdr["FILETYPE"] = "SPT"
    hdr["TELESCOP"] = "HST"
    hdr["INSTRUME"] = str(instrument)
    hdr["ROOTNAME"] = root
    hdr["TARGNAME"] = "DARK"
    try:
        from ..algorithms.orbit import REFERENCE_ELEMENTS, elements_at_epoch, orbit_keywords
    except ImportError:
        log.debug("hstcal_core.algorithms.orbit is not available: %s_spt.fits has no orbit",
                  root)
        return hdr
    for key, value in orbit_keywords(elements_at_epoch(REFERENCE_ELEMENTS, start_mjd)).items():
        hdr[key] = value
    return hdr


def _sci_header(layout: DarkLayout, chip: DarkChip) -> fits.Header:
    hdr = fits.Header()
    hdr["BUNIT"] = layout.bunit.upper()
    hdr[layout.chip_keyword] = chip.ccdchip
    hdr["LTV1"] = 0.0
    hdr["LTV2"] = 0.0
    hdr["LTM1_1"] = 1.0
    hdr["LTM2_2"] = 1.0
    for key, value in chip.header.items():
        hdr[key] = value
    return hdr


# --------------------------------------------------------------------------- writer
def simulate_darks(out_dir: str | Path, layout: DarkLayout, *, count: int = 2,
                   exptime: float | Sequence[float] = 1000.0, seed: int = 0,
                   start_mjd: float = 55197.0, cadence_days: float = 1.0,
                   gap_s: float = 60.0, truth_name: str = "truth") -> DarkTruth:
    """Write ``count`` darks as CR pairs (two consecutive exposures per visit).

    Parameters
    ----------
    out_dir : path
        Output directory (created).
    layout : DarkLayout
        The detector's file layout and signal levels.
    count : int
        Number of files (≥ 1); files ``2k`` and ``2k+1`` form visit ``k``.
    exptime : float or sequence of float
        EXPTIME of every file, or one per file.
    seed : int
        Seed of :func:`numpy.random.default_rng`; the hot pixels use a generator derived
        from it, so they are the same in every file of one call.
    start_mjd : float
        EXPSTART of the first file.
    cadence_days : float
        Time between visits.
    gap_s : float
        Time between the end of one exposure of a visit and the start of the next.
    truth_name : str
        Stem of the truth files.

    Returns
    -------
    DarkTruth
    """
    count = int(count)
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    exptimes = ([float(exptime)] * count if np.ndim(exptime) == 0
                else [float(e) for e in exptime])
    if len(exptimes) != count:
        raise ValueError(f"exptime: {len(exptimes)} values for {count} files")
    if any(not np.isfinite(e) or e < 0 for e in exptimes):
        raise ValueError(f"exptime must be finite and >= 0, got {exptimes}")
    if not isinstance(truth_name, str) or not truth_name or Path(truth_name).name != truth_name:
        raise ValueError(f"truth_name must be a plain file stem, got {truth_name!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    hot_rng = np.random.default_rng([int(seed), 1])
    hot = {c.extver: make_hot_pixels(c.shape, layout.hot_fraction, hot_rng,
                                     low=layout.hot_e_per_s[0], high=layout.hot_e_per_s[1])
           for c in layout.chips}
    truth = DarkTruth(files=[], rootnames=[], exptime=[], expstart=[], layout=layout.summary(),
                      crs={}, hot=hot,
                      parameters={"count": count, "exptime": exptimes, "seed": int(seed),
                                  "start_mjd": float(start_mjd),
                                  "cadence_days": float(cadence_days), "gap_s": float(gap_s)})
    start = float(start_mjd)
    for k, t_exp in enumerate(exptimes):
        if k and k % 2 == 0:
            start = float(start_mjd) + (k // 2) * float(cadence_days)
        end = start + (t_exp + layout.flashdur) / _SECONDS_PER_DAY
        root = _rootname(layout.rootname_prefix, int(seed), k)
        hdus = [fits.PrimaryHDU(header=_primary_header(layout, root, t_exp, start, end))]
        for chip in layout.chips:
            sci, err, dq, crs = dark_chip_electrons(chip, layout, t_exp, hot[chip.extver], rng)
            sci, err = _to_bunit(chip, layout, sci, err)
            hdr = _sci_header(layout, chip)
            hdus.append(fits.ImageHDU(sci, header=hdr, name="SCI", ver=chip.extver))
            err_hdr = fits.Header({"BUNIT": layout.bunit.upper()})
            hdus.append(fits.ImageHDU(err, header=err_hdr, name="ERR", ver=chip.extver))
            hdus.append(fits.ImageHDU(dq.astype(np.int16), name="DQ", ver=chip.extver))
            truth.crs[(root, chip.extver)] = crs
        name = f"{root}_flt.fits"
        write_atomic(fits.HDUList(hdus), out / name)
        write_atomic(fits.HDUList([fits.PrimaryHDU(header=spt_header(layout, root, start))]),
                     out / f"{root}_spt.fits")
        truth.files.append(name)
        truth.rootnames.append(root)
        truth.exptime.append(t_exp)
        truth.expstart.append(start)
        start = end + float(gap_s) / _SECONDS_PER_DAY
    truth.save(out, truth_name)
    log.info("wrote %d synthetic %s/%s darks to %s", count, layout.instrument, layout.detector,
             out)
    return truth


# --------------------------------------------------------------------------- scoring
def score_cr_masks(mask: np.ndarray, crs: CosmicRays, *, min_pixels: int = 3,
                   pixel_threshold_e: float = DETECTABLE_E, min_object_size: int = 3,
                   true_charge_e: float = 1.0) -> dict[str, float]:
    """Score a cosmic-ray mask against the injected cosmic rays.

    Parameters
    ----------
    mask : ndarray of bool
        The CR mask of one imset.
    crs : CosmicRays
        What was injected into that imset.
    min_pixels : int
        A cosmic ray counts for completeness when at least this many of its deposits
        hold ``pixel_threshold_e`` or more ("CRs ≥ 3 px").
    pixel_threshold_e : float
        Deposit that makes a pixel part of a CR's size (default
        :data:`~hstcal_core.simulate.cosmic_rays.DETECTABLE_E`).
    min_object_size : int
        Mask objects (8-connected) of at least this many pixels are scored for false
        detections — the census' size cut.
    true_charge_e : float
        A mask object is a false detection when none of its pixels holds this much
        injected CR charge.

    Returns
    -------
    dict
        ``n_crs`` (eligible), ``n_found``, ``completeness`` (a CR is found when its
        brightest pixel is flagged), ``n_objects``, ``n_false``, ``false_fraction``
        (objects ≥ ``min_object_size``), ``pixel_false_fraction`` (flagged pixels with
        less than ``true_charge_e``) and ``n_flagged``.
    """
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    if mask.shape != tuple(crs.shape):
        raise ValueError(f"mask shape {mask.shape} differs from the truth's {crs.shape}")
    charge = render(crs)
    summary = crs.summary(pixel_threshold_e)
    eligible = np.flatnonzero(summary["n_pixels"] >= min_pixels)
    peak_pixel = np.full(crs.n_crs, -1, np.int64)
    if crs.charge_e.size:
        order = np.lexsort((-crs.charge_e, crs.cr_id))
        first = np.ones(order.size, bool)
        first[1:] = crs.cr_id[order][1:] != crs.cr_id[order][:-1]
        top = order[first]
        peak_pixel[crs.cr_id[top]] = crs.y[top].astype(np.int64) * crs.shape[1] + crs.x[top]
    peaks = peak_pixel[eligible]
    found = int(np.count_nonzero(mask.ravel()[peaks[peaks >= 0]]))
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    best = ndimage.maximum(charge, labels, index=np.arange(1, n + 1)) if n else np.zeros(0)
    big = sizes[1:] >= min_object_size
    n_false = int(np.count_nonzero(big & (np.asarray(best) < true_charge_e)))
    n_objects = int(np.count_nonzero(big))
    n_flagged = int(np.count_nonzero(mask))
    return {
        "n_crs": int(eligible.size),
        "n_found": found,
        "completeness": found / eligible.size if eligible.size else float("nan"),
        "n_objects": n_objects,
        "n_false": n_false,
        "false_fraction": n_false / n_objects if n_objects else 0.0,
        "n_flagged": n_flagged,
        "pixel_false_fraction": (float(np.count_nonzero(mask & (charge < true_charge_e)))
                                 / n_flagged if n_flagged else 0.0),
    }
