"""The ``crstats`` stage: reject, label and measure every cosmic ray of some darks.

HSTcosmicrays' job (Miles et al. 2021) on the hooks:

1. **plan** (headers only): darks are grouped for rejection.  ``grouping="pairs"``
   pairs exposures of one readout mode (the detector's ``mode_keywords``, e.g.
   CCDAMP/CCDGAIN) and EXPTIME, consecutive in time (an odd one joins the last pair);
   ``"single"`` treats each file alone (WFPC2 thresholding, IR ramps); ``"auto"`` (the
   default) keeps a CR-split file (≥ 2 imsets per chip) alone and pairs the others.
   One task per group.
2. **task** (a worker): read (the plugin's ``reader`` or ``read_exposure``) →
   ``calibrate`` → ``reject_crs`` per chip (imsets of multi-chip detectors are chips,
   combined chip by chip) → for each input imset ``label`` its CR mask → ``measure``
   (kind ``"crstats"``) → one :class:`~hstcal_core.census.records.ExposureRecord` per
   exposure, with HST's track from the SPT/SHM orbital elements.
3. **finish** (the driver): append every record to the HDF5 store in one batch.

Rate (issue 4): ``N / (EXPTIME + FLASHDUR + readout) / area``; the readout padding is
the detector's ``extra["census_readout_time_s"]`` (HSTcosmicrays' values), WFPC2 adds its
long-exposure rule ``extra["census_readout_long"] = (exptime limit, padding)``.  The
area is scaled by the fraction of the detector read (subarrays count like full frames).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..algorithms.crstats import energy_with_wings, incident_rate, pixel_lists
from ..errors import ConfigError, InputError
from ..fitsio import read_headers
from ..images import Exposure
from ..registry import Registry, get_registry
from ..tasks import Task, TaskOutput, run_serially
from .records import CR_COLUMNS, ExposureRecord, empty_crs

__all__ = [
    "companion",
    "finish_crstats",
    "integration_time",
    "measure_group",
    "plan_crstats",
    "run_crstats",
    "to_electrons",
]

log = logging.getLogger(__name__)

_WCS_KEYS = ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CD1_1", "CD1_2", "CD2_1", "CD2_2")
_COMPANIONS = ("spt", "shm")


def companion(path: Path) -> Path | None:
    """The exposure's SPT (or WFPC2 SHM) file beside it, if any."""
    path = Path(path)
    root = path.name.split("_")[0]
    for kind in _COMPANIONS:
        for suffix in (".fits", ".fits.gz"):
            candidate = path.with_name(f"{root}_{kind}{suffix}")
            if candidate.exists():
                return candidate
    return None


def integration_time(detector, exptime: float, flashdur: float = 0.0,
                     readouts: int = 1) -> float:
    """EXPTIME + FLASHDUR + the detector's census readout padding per read-out, s (issue 4)."""
    from ..algorithms import crstats

    readout = float(detector.extra.get("census_readout_time_s", detector.readout_time_s))
    long_rule = detector.extra.get("census_readout_long")
    if long_rule is not None and exptime > float(long_rule[0]):
        readout = float(long_rule[1])
    return crstats.integration_time(exptime, flashdur, readout * int(readouts))


def _time_span(det, exp: Exposure) -> tuple[float, float, float, int]:
    """``(start MJD, end MJD, exposure time s, read-outs)`` of one exposure.

    A CR-split file (one chip, several imsets exposed and read out one after the other,
    STIS CRSPLIT) spans its imsets: their summed EXPTIME, the first start, the last end,
    one read-out each.  Its primary carries TEXPTIME/TEXPSTRT/TEXPEND and no EXPTIME, so
    ``Exposure.key`` would answer with SCI,1 alone.  Chips (one read-out) and ramp
    increments (RAMPDIFF: one non-destructive ramp) keep the exposure's own keywords.
    """
    exptime = float(exp.key("EXPTIME", exp.key("TEXPTIME", 0.0)) or 0.0)
    start = float(exp.key("EXPSTART", exp.key("TEXPSTRT", 0.0)) or 0.0)
    end = float(exp.key("EXPEND", exp.key("TEXPEND", start + exptime / 86400.0)) or start)
    splits = exp.imsets
    if (int(det.extra.get("chips", 1) or 1) > 1 or len(splits) < 2
            or any(i.header.get("RAMPDIFF", False) for i in splits)):
        return start, end, exptime, 1
    starts = [float(i.header["EXPSTART"]) for i in splits if "EXPSTART" in i.header]
    ends = [float(i.header["EXPEND"]) for i in splits if "EXPEND" in i.header]
    return (min(starts, default=start), max(ends, default=end),
            float(sum(i.exptime for i in splits)), len(splits))


def to_electrons(sci: np.ndarray, header, primary, detector, exptime: float) -> np.ndarray:
    """The SCI array in electrons (BUNIT counts/DN × gain; rates × EXPTIME)."""
    bunit = str(header.get("BUNIT", primary.get("BUNIT", "COUNTS")) or "COUNTS").upper()
    data = np.asarray(sci, dtype=np.float32)
    if "/S" in bunit:
        data = data * np.float32(exptime)
    if bunit.startswith("ELECTRON"):
        return data
    gain = header.get("ATODGAIN", primary.get("ATODGAIN"))
    if gain in (None, 0):
        amps = [float(primary[k]) for k in ("ATODGNA", "ATODGNB", "ATODGNC", "ATODGND")
                if k in primary and float(primary[k]) > 0]
        gain = float(np.mean(amps)) if amps else None
    if gain in (None, 0):
        setting = primary.get(detector.gain_keyword)
        try:
            gain = detector.amplifier(float(setting)).gain
        except (KeyError, TypeError, ValueError):
            gain = detector.amplifier(detector.gains[0]).gain
    return data * np.float32(gain)


# --------------------------------------------------------------------------- plan
def _mode(primary, detector) -> tuple:
    keys = tuple(detector.extra.get("mode_keywords", ()))
    return tuple(str(primary.get(k, "")).strip().upper() for k in keys)


def plan_crstats(ctx, *, registry: Registry | None = None) -> list[Task]:
    """Group the inputs (headers only) into one task per rejection group."""
    grouping = ctx.options.get("grouping") or "auto"
    chips = int(ctx.detector.extra.get("chips", 1) or 1)
    facts, failed, alone, unpaired = [], [], [], []
    for path in ctx.inputs:
        path = Path(path)
        try:
            primary, sci = _headers(ctx.entry, path)
        except InputError as exc:
            failed.append((str(path), exc.problem))
            continue
        start = primary.get("EXPSTART", sci[0].get("EXPSTART", primary.get("TEXPSTRT", 0.0)))
        exptime = primary.get("EXPTIME", sci[0].get("EXPTIME", primary.get("TEXPTIME", 0.0)))
        if grouping == "auto" and len(sci) // chips >= 2:
            alone.append((float(start or 0.0), path))
            continue
        facts.append((float(start or 0.0), path, _mode(primary, ctx.detector),
                      round(float(exptime or 0.0), 1)))
    facts.sort(key=lambda f: (f[0], f[1].name))
    groups: list[list[Path]] = [[p] for _, p in sorted(alone)]
    if grouping in ("pairs", "auto"):
        by_mode: dict[tuple, list[Path]] = {}
        for _, path, mode, exptime in facts:
            by_mode.setdefault((mode, exptime), []).append(path)
        for (mode, exptime), paths in by_mode.items():
            if len(paths) == 1:
                # calibrated first (in its task), so that what is not a usable dark at
                # all is refused for that reason, not for want of a partner
                unpaired.append((paths[0], f"no partner dark of the same mode {mode} and "
                                           f"EXPTIME {exptime} s to reject cosmic rays with"))
                continue
            size = max(2, int(ctx.options.get("group_size") or 2))
            chunks = [paths[i:i + size] for i in range(0, len(paths), size)]
            if len(chunks) > 1 and len(chunks[-1]) == 1:
                chunks[-2].extend(chunks.pop())  # never leave one dark alone
            groups.extend(chunks)
    elif grouping == "single":
        groups = [[path] for _, path, _, _ in facts]
    else:
        raise ConfigError(f"grouping must be 'auto', 'pairs' or 'single', got {grouping!r}")
    tasks = []
    if failed:
        tasks.append(Task("plan", _planning_report, {"failures": failed}))
    extra = {} if registry is None else {"registry": registry}
    for group in groups:
        key = "+".join(p.name.split("_")[0] for p in group)
        tasks.append(Task(key, measure_group, {
            "detector": ctx.detector.name, "options": ctx.options,
            "paths": [str(p) for p in group], **extra}))
    for path, reason in unpaired:
        tasks.append(Task(path.name.split("_")[0], measure_group, {
            "detector": ctx.detector.name, "options": ctx.options, "paths": [str(path)],
            "unpaired": reason, **extra}))
    return tasks


def _positive_deviations(inputs: Sequence[Exposure], combined) -> list | None:
    """Per source imset: which of its flagged pixels are brighter (per second) than the
    same pixel in the other exposures' imsets, taken by their median.

    A cosmic ray only adds charge.  With few images (a dark pair) the median guess
    sits halfway between a hit and its partner, so the rejection flags both; keeping
    only positive deviations assigns the hit to the exposure it landed in (the pair
    case HSTcosmicrays, combining up to 30 darks, never met).  The reference is the
    median of the other imsets (for a pair: the other one): with three or more, where
    two others hold overlapping hits the acsrej-style rejection (two-sided) flags the
    clean images too, and the other images' *minimum* is a clean image that a clean
    one exceeds half the time.  Only flagged pixels are examined (a few per cent of the
    image).  Returns one boolean array per source (same shape as its mask), or None
    when there is nothing to compare (one image).
    """
    imsets = [i for e in inputs for i in e.imsets if i.header.get("IMSET_OK", True) is not False]
    if len(imsets) < 2 or len(imsets) != len(combined.sources):
        return None
    if any(np.asarray(i.sci).shape != np.asarray(imsets[0].sci).shape for i in imsets):
        return None
    flats = [np.asarray(i.sci).ravel() for i in imsets]
    scale = np.array([1.0 / (i.exptime if i.exptime > 0 else 1.0) for i in imsets])
    keep = []
    for j, mask in enumerate(combined.masks):
        flat_mask = np.asarray(mask, dtype=bool).ravel()
        idx = np.flatnonzero(flat_mask)
        mine = flats[j][idx] * scale[j]
        others = np.median([flats[m][idx] * scale[m] for m in range(len(flats)) if m != j],
                           axis=0)
        out = np.zeros(flat_mask.size, dtype=bool)
        out[idx] = mine > others
        keep.append(out.reshape(np.shape(mask)))
    return keep


def _headers(entry, path: Path):
    """Primary and SCI headers: without pixels for MEF files, through the plugin's reader
    for the formats only it understands (WFPC2 waivered/GEIS, IR ramps)."""
    if entry.reader is None:
        return read_headers(path)
    exposure = entry.read(path)
    return exposure.primary, [i.header for i in exposure.imsets]


def _planning_report(*, failures) -> TaskOutput:
    return TaskOutput(failures=list(failures))


# --------------------------------------------------------------------------- task
def measure_group(*, detector: str, options, paths: Sequence[str],
                  registry: Registry | None = None, unpaired: str | None = None) -> TaskOutput:
    """Reject, label and measure one group of darks (runs in a worker).

    ``unpaired``: the reason a lone dark cannot be paired; it is calibrated (so that an
    input that is no usable dark says so) and then refused with that reason.
    """
    registry = registry or get_registry()
    entry = registry.entry(detector)
    det, hooks = entry.detector, registry.hooks
    out = TaskOutput()
    exposures: list[Exposure] = []
    for p in paths:
        try:
            cal = hooks.calibrate(detector=det, exposure=entry.read(Path(p)), options=options)
            _require_dark(cal, det, options)  # after calibrate: plugins say it their way
            exposures.append(cal)
        except InputError as exc:
            out.failures.append((p, exc.problem))
    if unpaired is not None:
        out.failures.extend((str(e.path), unpaired) for e in exposures)
        return out
    if not exposures:
        return out
    try:
        masks = _cr_masks(det, hooks, exposures, options)
    except InputError as exc:
        out.failures.extend((str(e.path), exc.problem) for e in exposures)
        return out
    for exp in exposures:
        try:
            out.records.append(_record(det, hooks, exp, masks[exp.rootname], options))
            out.processed.append(str(exp.path))
        except InputError as exc:
            out.failures.append((str(exp.path), exc.problem))
    return out


def _require_dark(exposure: Exposure, det, options) -> None:
    """The census measures darks: refuse other frames unless ``darks_only`` is off."""
    if not options.get("darks_only", True):
        return
    keyword = str(det.extra.get("frame_keyword", "TARGNAME"))
    value = str(exposure.key(keyword, "") or "").strip().upper()
    if not value.startswith("DARK"):
        raise InputError(exposure.path, f"not a dark ({keyword}={value or '?'}); the census "
                                        f"measures darks (darks_only=false measures any frame)")


def _cr_masks(det, hooks, exposures: Sequence[Exposure], options) -> dict[str, list]:
    """``{rootname: [(mask, background) per imset]}``; reject_crs chip by chip.

    ``background`` is the CR-free image expected in that imset, in its own units:
    the combination's clean sum scaled by the imset's share of the exposure time
    (ocrreject's model, kept as a :class:`_Scaled` until :func:`_record` subtracts it),
    so a cosmic ray's energy excludes the dark current and sky under it.  Without a
    real combination (one image thresholded) it is the median of the unflagged pixels.
    """
    n_chips = int(det.extra.get("chips", 1) or 1)
    out: dict[str, list] = {e.rootname: [None] * len(e.imsets) for e in exposures}
    if n_chips > 1:
        sets = [[(e, k) for e in exposures] for k in range(len(exposures[0].imsets))]
    else:
        sets = [[(e, k) for e in exposures for k in range(len(e.imsets))]]
    for members in sets:
        views = {}
        for e, k in members:  # one Exposure per source file, holding the chosen imsets
            views.setdefault(e.rootname, (e, []))[1].append(k)
        inputs = [Exposure(e.path, e.primary, tuple(e.imsets[k] for k in ks))
                  for e, ks in views.values()]
        combined = hooks.reject_crs(detector=det, exposures=inputs, options=options)
        positive = _positive_deviations(inputs, combined)
        position = {root: iter(ks) for root, (_, ks) in views.items()}
        for j, ((root, _ver), mask) in enumerate(zip(combined.sources, combined.masks)):
            k = next(position[root])
            imset = views[root][0].imsets[k]
            mask = np.asarray(mask, dtype=bool)
            if positive is not None:
                mask &= positive[j]
            if combined.ncombine >= 2 and combined.texptime > 0 and imset.exptime > 0:
                # formed in _record, one imset at a time: no full frame held per imset
                background = _Scaled(combined.sci, np.float32(imset.exptime / combined.texptime))
            else:
                clean = imset.sci[~mask]
                background = np.float32(np.median(clean)) if clean.size else np.float32(0)
            out[root][k] = (mask, background)
    return out


class _Scaled(NamedTuple):
    """A background ``image · factor`` not yet formed (see :func:`_subtract`)."""

    image: np.ndarray
    factor: np.float32


def _subtract(sci: np.ndarray, background) -> np.ndarray:
    """``sci - background`` in one new array (float32 for a :class:`_Scaled` one)."""
    if isinstance(background, _Scaled):
        out = np.multiply(background.image, background.factor)
        if np.result_type(sci, out) == out.dtype:
            return np.subtract(sci, out, out=out)
        return sci - out
    return sci - background


def _record(det, hooks, exp: Exposure, masks: list, options) -> ExposureRecord:
    start, end, exptime, readouts = _time_span(det, exp)
    if exptime < 0.1:
        raise InputError(exp.path, f"EXPTIME {exptime} s < 0.1 s: not a usable dark")
    columns = {k: [] for k in CR_COLUMNS}
    offsets, indices, base = [np.zeros(1, np.int64)], [], 0
    n_cut_small = n_cut_large = 0
    sizes = []
    for k, (imset, found) in enumerate(zip(exp.imsets, masks)):
        if found is None:
            continue
        mask, background = found
        sizes.append(mask.size)
        image = to_electrons(_subtract(imset.sci, background), imset.header, exp.primary, det,
                             imset.exptime or exptime)
        result = hooks.label(detector=det, image=image, mask=mask, options=options)
        labels, n = result[0], int(result[1])
        n_cut_small += int(getattr(result, "n_cut_small", 0))
        n_cut_large += int(getattr(result, "n_cut_large", 0))
        if n == 0:
            continue
        stats = hooks.measure(detector=det, kind="crstats",
                              data={"image": image, "labels": labels, "n": n}, options=options)
        stats = dict(stats)
        stats["energy_e"] = energy_with_wings(image, labels, n)  # pixels + unflagged ring
        for name in CR_COLUMNS:
            if name == "imset":
                columns[name].append(np.full(n, k, np.int16))
            else:
                columns[name].append(np.asarray(stats[name]))
        off, idx = pixel_lists(labels, n)
        offsets.append(off[1:] + base)
        indices.append(idx)
        base += int(off[-1])
    crs = empty_crs()
    for name, parts in columns.items():
        if parts:
            crs[name] = np.concatenate(parts).astype(crs[name].dtype, copy=False)
    n_cr = int(crs["energy_e"].size)
    flashdur = float(exp.key("FLASHDUR", 0.0) or 0.0)
    t_int = integration_time(det, exptime, flashdur, readouts)
    # chips are distinct areas; CR-split imsets and ramp increments cover the same one
    n_pixels = sum(sizes) if int(det.extra.get("chips", 1) or 1) > 1 else max(sizes, default=0)
    area = float(det.area_cm2) * min(1.0, n_pixels / det.npix) if n_pixels else float(
        det.area_cm2)
    track = _track(exp, start, end)
    header = exp.imsets[0].header
    from .. import __version__

    return ExposureRecord(
        rootname=exp.rootname, detector=det.name, start_mjd=start, end_mjd=end,
        exptime=exptime, integration_time=t_int, area_cm2=area, n_cr=n_cr,
        n_cut_small=n_cut_small, n_cut_large=n_cut_large,
        rate=incident_rate(n_cr, t_int, area) if t_int > 0 and area > 0 else float("nan"),
        orbit_mjd=track[0], latitude=track[1], longitude=track[2], altitude_km=track[3],
        crs=crs, pixel_offsets=np.concatenate(offsets), pixel_index=(
            np.concatenate(indices) if indices else np.zeros(0, np.int64)),
        wcs={k: float(header[k]) for k in _WCS_KEYS if k in header},
        meta={"file": exp.path.name, "version": __version__,
              **{k: str(exp.primary[k]) for k in det.extra.get("mode_keywords", ())
                 if k in exp.primary}})


def _track(exp: Exposure, start: float, end: float):
    empty = tuple(np.zeros(0) for _ in range(4))
    spt = companion(exp.path)
    if spt is None:
        log.warning("%s: no SPT/SHM file beside it: HST's position is not recorded", exp.path)
        return empty
    from ..algorithms.orbit import hst_track, orbital_elements

    try:
        track = hst_track(orbital_elements(_primary_header(spt), path=spt), start,
                          max(end, start))
    except InputError as exc:
        log.warning("%s: %s: HST's position is not recorded", spt, exc.problem)
        return empty
    return (track.mjd, track.latitude_deg, track.longitude_deg, track.altitude_km)


def _primary_header(path: Path):
    from astropy.io import fits

    try:
        return fits.getheader(path, 0)
    except OSError as exc:
        raise InputError(path, f"cannot read its primary header ({exc})") from None


# --------------------------------------------------------------------------- finish
def finish_crstats(ctx, outputs: Mapping[str, TaskOutput]):
    """Append every record to the store in one batch (the driver's job)."""
    from ..stages import StageResult
    from .store import CensusStore

    store = ctx.options.get("store")
    if not store:
        raise ConfigError("stage 'crstats' needs --store FILE.h5 (parameter 'store')")
    records, result = [], StageResult("crstats", ctx.detector.name)
    for key in outputs:
        out = outputs[key]
        records.extend(out.records)
        result.failures.extend(out.failures)
        result.skipped.extend(out.skipped)
    batch = ctx.options.get("store_batch") or "run:" + ",".join(
        sorted(r.rootname for r in records))[:200]
    with CensusStore(store) as s:
        added = s.append(records, batch=batch)
    result.products.append(Path(store))
    result.details.update(n_exposures=len(records), n_crs=sum(r.n_cr for r in records),
                          appended=added, batch=batch)
    log.info("crstats: %d exposure(s), %d cosmic rays -> %s", len(records),
             result.details["n_crs"], store)
    return result


def run_crstats(ctx):
    """``hstcal run --stage crstats INPUT... --store census.h5`` in one process."""
    if not ctx.inputs:
        raise InputError(None, "stage 'crstats': no input files given")
    return finish_crstats(ctx, run_serially(plan_crstats(ctx, registry=ctx.registry)))
