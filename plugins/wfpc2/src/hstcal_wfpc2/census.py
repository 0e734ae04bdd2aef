"""WFPC2 darks for the cosmic-ray census: checks, electrons, and CRs by thresholding.

WFPC2 darks were not taken as CR-split pairs suited to a rejection, so HSTcosmicrays
(Miles et al. 2021, ``pipeline/label/labeler.py``, ``ccd_labeling(use_dq=False)``)
found cosmic rays in each c0m frame alone: pixels above ``|median| + k·spread`` of
the frame.  Here that is :func:`hstcal_core.algorithms.label.threshold_mask` with
``k = threshold_nsigma`` MADs (5 by default, i.e. a 3.37σ cut with astropy's unscaled
MAD; the kernel documents the convention), on each chip in electrons, with DQ-flagged
pixels (:data:`BAD_DQ`) left out of the statistics and never flagged.

Checks (full frames and subarrays alike; an :class:`~hstcal_core.errors.InputError`
with the reason, recorded by the stage): the right chip, a dark (IMAGETYP or TARGNAME),
EXPTIME ≥ 0.1 s, no QUALCOM1-3 comment (primary or the SHM companion), a calibrated
c0 file (BLEVCORR not PERFORM).  Units: c0 data are DN (COUNTS); they are converted to
electrons with the chip's measured gain for the file's ATODGAIN setting (7.12 e⁻/DN
for PC1 at ATODGAIN 7, WFPC2 IHB §4.12 via :mod:`hstcal_wfpc2.detectors`) rather than
the nominal ATODGAIN itself, which HSTcosmicrays used.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hstcal_core.algorithms.label import threshold_mask
from hstcal_core.census.flt import MIN_EXPTIME_S, check_artifacts
from hstcal_core.detectors import Detector
from hstcal_core.errors import InputError
from hstcal_core.images import CombinedImage, Exposure, ImSet
from hstcal_core.options import Options, Param, as_bool

__all__ = ["BAD_DQ", "FILL_DQ", "MIN_EXPTIME_S", "CENSUS_PARAMS", "CRSTATS_DEFAULTS",
           "check_census_input", "calibrate_census", "threshold_reject_crs"]

#: WFPC2 DHB Table 3.4: 1 Reed-Solomon error and 16 missing data (fill) — always left out.
FILL_DQ = 1 | 16
#: Pixels never counted as cosmic rays: FILL_DQ plus 2 calibration-file defect, 4 camera
#: defect, 32 other bad pixel, 128 charge trap, 512 unrepaired warm pixel and 2048 chip
#: masked (WFPC2 DHB Table 3.4).  8 (A/D saturation) stays: in a dark it is a big CR.
BAD_DQ = FILL_DQ | 2 | 4 | 32 | 128 | 512 | 2048

CENSUS_PARAMS: tuple[Param, ...] = (
    Param("require_dark", as_bool, True,
          "reject inputs that are not darks (IMAGETYP DARK or TARGNAME DARK*)"),
    Param("threshold_nsigma", float, 5.0,
          "CR threshold: |median| + this many (unscaled) MADs of the chip"),
)

#: Each c0m is thresholded alone (no pair needed); ``badinpdq`` is :data:`BAD_DQ`.
CRSTATS_DEFAULTS: dict[str, object] = {"grouping": "single", "badinpdq": BAD_DQ}


def check_census_input(detector: Detector, exposure: Exposure, *,
                       require_dark: bool = True) -> None:
    """Raise :class:`InputError` (naming the file) unless it is a usable c0 dark of this chip."""
    path = exposure.path
    inst = str(exposure.key("INSTRUME", "") or "").strip().upper()
    chip = str(exposure.key("DETECTOR", "") or "").strip()
    if inst != "WFPC2" or chip != detector.detector:
        raise InputError(path, f"is INSTRUME={inst or '?'} DETECTOR={chip or '?'}, not WFPC2 "
                               f"chip {detector.detector} ({detector.name})")
    target = str(exposure.key("TARGNAME", "") or "").strip().upper()
    imagetyp = str(exposure.key("IMAGETYP", "") or "").strip().upper()
    if require_dark and not (imagetyp == "DARK" or target.startswith("DARK")):
        raise InputError(path, f"not a dark (IMAGETYP={imagetyp or '?'}, TARGNAME="
                               f"{target or '?'}): the cosmic-ray census uses dark frames only")
    check_artifacts(exposure)  # EXPTIME >= 0.1 s, no QUALCOM in the c0 or its SHM
    if str(exposure.key("BLEVCORR", "") or "").strip().upper() == "PERFORM":
        raise InputError(path, "is a raw d0 file (BLEVCORR=PERFORM): the census reads "
                               "calibrated c0 files (calwp2 output)")


def calibrate_census(detector: Detector, exposure: Exposure, options: Options | None
                     ) -> Exposure:
    """A new exposure in electrons after :func:`check_census_input`."""
    require = True if options is None else options.get("require_dark")
    check_census_input(detector, exposure, require_dark=require is not False)
    setting = exposure.key(detector.gain_keyword)
    try:
        amp = detector.amplifier(float(setting))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(exposure.path, f"ATODGAIN={setting!r}: {exc}") from None
    imsets = []
    for imset in exposure.imsets:
        header = imset.header.copy()
        bunit = str(header.get("BUNIT", "COUNTS") or "COUNTS").upper()
        sci, err = imset.sci, imset.err
        if not bunit.startswith("ELECTRON"):
            gain = np.float32(amp.gain)
            sci, err = (sci * gain).astype(np.float32), (err * gain).astype(np.float32)
            header["BUNIT"] = ("ELECTRONS", f"DN x {amp.gain} e-/DN (chip gain at "
                                            f"ATODGAIN {setting})")
        imsets.append(ImSet(sci=sci, err=err, dq=imset.dq.copy(), header=header))
    primary = exposure.primary.copy()
    primary["READNSE"] = (amp.read_noise, "read noise of the chip, e- (WFPC2 IHB 4.12)")
    primary.add_history(f"hstcal census calibration: electrons with gain {amp.gain} e-/DN")
    return Exposure(path=exposure.path, primary=primary, imsets=tuple(imsets))


def threshold_reject_crs(detector: Detector, exposures: Sequence[Exposure],
                         options: Options) -> CombinedImage:
    """Threshold every imset alone; one CR mask per imset, nothing combined.

    The returned image is the first imset (``ncombine`` 1), so the census takes each
    frame's background from its own unflagged pixels.
    """
    nsigma = float(options.get("threshold_nsigma") or 5.0)
    badinpdq = int(options.get("badinpdq") if options.get("badinpdq") is not None
                   else BAD_DQ) | FILL_DQ
    imsets: list[ImSet] = []
    sources: list[tuple[str, int]] = []
    for exp in exposures:
        for ver, imset in enumerate(exp.imsets, start=1):
            if imset.header.get("IMSET_OK", True) is False:
                continue
            imsets.append(imset)
            sources.append((exp.rootname, ver))
    if not imsets:
        raise InputError(exposures[0].path if exposures else None,
                         "cosmic-ray thresholding: no imset to threshold")
    masks = np.zeros((len(imsets),) + imsets[0].shape, dtype=bool)
    for k, imset in enumerate(imsets):
        if imset.shape != imsets[0].shape:
            raise InputError(None, f"{sources[k][0]}: chip shape {imset.shape} differs from "
                                   f"{imsets[0].shape} of {sources[0][0]}")
        bad = (imset.dq.astype(np.int64) & badinpdq) != 0
        image = np.where(bad, np.float32(np.nan), imset.sci)
        if np.all(bad):
            continue
        masks[k] = threshold_mask(image, nsigma)
    first = imsets[0]
    exptime = first.exptime
    primary = exposures[0].primary.copy()
    primary.add_history(f"CRs by thresholding each imset: |median| + {nsigma} MAD, "
                        f"DQ & {badinpdq} excluded")
    return CombinedImage(sci=first.sci.copy(), err=first.err.copy(),
                         dq=np.bitwise_or.reduce(np.stack([i.dq for i in imsets]), axis=0),
                         masks=masks, sources=tuple(sources), texptime=exptime, ncombine=1,
                         primary=primary, header=first.header.copy(),
                         parameters={"method": "threshold", "threshold_nsigma": nsigma,
                                     "badinpdq": badinpdq},
                         n_rejected=int(np.count_nonzero(masks)))
