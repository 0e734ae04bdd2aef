"""The ``crstats`` stage against the simulators' truth, detector by detector (issue 4).

For each census detector, darks are simulated with the truth of every cosmic ray, run
through ``run_stage("crstats", ...)`` into an HDF5 store, read back with the store's
readers (``read_exposures``, ``read_crs``, ``read_pixels``) and scored against the truth
with the issue's figures, as ``plugins/stis/tests/test_stis_census.py`` does for STIS:

* **completeness** ≥ 98 % of the CRs with ≥ 3 truth pixels, a truth pixel being a
  deposit of at least ``COMPLETE_SIGMA`` × the noise of its imset; a CR is found when
  ≥ 50 % of its truth pixels are in the stored pixel lists of its exposure *and imset*
  (``crs["imset"]``: the chip of a CCD file, the read-to-read increment of a ramp);
* **false detections** ≤ 1 %: stored objects touching no pixel that holds charge of a
  truth CR of that imset;
* **energy** within 2 %: the median of stored ``energy_e`` / truth charge over the
  objects touching exactly one truth CR, of more than ``ENERGY_MIN_E``;
* **rate** within 2 %: what a perfect detector counts — 8-connected groups of ≥ 3 truth
  pixels above ``perfect_sigma`` × the noise in one imset
  (:func:`~hstcal_core.algorithms.label.label_crs`; touching CRs count once, as they
  must) — over the record's ``integration_time`` and ``area_cm2``, against the
  recorded rate.  ``perfect_sigma`` is the lowest threshold the detector's CR finder
  applies (the last crsigma of a CCD rejection, the neighbour threshold of the IR jump
  test, WFPC2's 5 unscaled MADs).

The noise of an imset is *measured*: 1.4826 × MAD of its calibrated pixels that hold no
CR charge, on the very arrays the stage labels (CCD chips in electrons, the WFPC2 chip
in electrons, IR/NICMOS read-to-read increments with WFC3/IR's 5-pixel reference border
trimmed — the ramp simulators' truth coordinates are those of the trimmed array).

Groups are the stage's defaults: the four CCD darks of one mode and EXPTIME form one
rejection group (``group_size`` 4); WFPC2 chips and ramps are measured file by file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from hstcal_core import run_stage
from hstcal_core.algorithms.label import label_crs
from hstcal_core.census.store import read_crs, read_exposures, read_pixels
from hstcal_core.options import resolve_options
from hstcal_core.simulate.darks import DarkTruth
from hstcal_core.stages import stage, stage_params

#: A truth pixel for completeness: ≥ 5 σ of its imset's noise (the STIS census test's).
COMPLETE_SIGMA = 5.0
#: The census size cut: CRs of ≥ 3 pixels.
MIN_CR_PIXELS = 3
#: Energies are compared for CRs above this charge.
ENERGY_MIN_E = 500.0
SEED = 17


@dataclass(frozen=True)
class Case:
    """One detector: its simulator's arguments and the perfect detector's threshold."""

    detector: str
    simulate: dict
    perfect_sigma: float
    why: str
    #: ``{figure: reason}`` for figures known to miss the issue's target.
    xfail: dict = field(default_factory=dict)


CASES = [
    Case("acs_wfc", {"count": 4, "shape": "256x512", "exptime": 1000.0}, 4.0,
         "acsrej crsigmas 6,5,4"),
    Case("acs_hrc", {"count": 4, "shape": "512x512", "exptime": 1000.0}, 4.0,
         "acsrej crsigmas 6,5,4"),
    Case("wfc3_uvis", {"count": 4, "shape": "256x512", "exptime": 900.0}, 4.0,
         "wf3rej crsigmas 8,6,4"),
    Case("wfpc2_wf3", {"count": 2, "shape": "800x800", "exptime": 1000.0}, 5 * 0.6745,
         "threshold |median| + 5 unscaled MADs"),
    Case("wfc3_ir", {"count": 4, "subarray": 512, "samp_seq": "SPARS25", "nsamp": 16}, 3.0,
         "jumps at 5 sigma, their neighbours at ir_neighbor_sigma 3"),
    # 12 darks: on NICMOS the rate ratio of 4 darks scatters by 1.6 % from seed to seed
    # (0.97-1.01), too close to the 2 % requirement to test it; 12 darks scatter by 0.4 %.
    Case("nicmos_nic2", {"count": 12, "samp_seq": "STEP64", "nsamp": 16}, 3.0,
         "jumps at 5 sigma, their neighbours at ir_neighbor_sigma 3"),
]


# --------------------------------------------------------------------------- truth
@dataclass
class ImsetTruth:
    """The CR deposits in one imset: flat pixel index, charge (e⁻), CR number."""

    shape: tuple[int, int]
    flat: np.ndarray
    charge: np.ndarray
    cr: np.ndarray

    def totals(self) -> np.ndarray:
        """Charge of each CR, e⁻ (indexed by CR number)."""
        return np.bincount(self.cr, weights=self.charge, minlength=self.cr.max(initial=-1) + 1)

    def charge_image(self) -> np.ndarray:
        """Dense CR charge of the imset, e⁻ (CRs hitting one pixel add up)."""
        image = np.zeros(self.shape[0] * self.shape[1])
        np.add.at(image, self.flat, self.charge)
        return image.reshape(self.shape)


def _dark_truth(truth: DarkTruth, chip: int | None) -> dict:
    """``{(rootname, imset): ImsetTruth}`` of FLT-like CCD darks or WFPC2 c0 files.

    A CCD file holds one imset per chip in EXTVER order; a WFPC2 detector is one chip,
    whose exposure holds that chip alone (imset 0).
    """
    out = {}
    for (root, extver), crs in truth.crs.items():
        if chip is not None and extver != chip:
            continue
        k = 0 if chip is not None else extver - 1
        out[(root, k)] = ImsetTruth(tuple(crs.shape), crs.y.astype(np.int64) * crs.shape[1]
                                    + crs.x, crs.charge_e.astype(np.float64),
                                    crs.cr_id.astype(np.int64))
    return out


def _ramp_truth(truth: dict) -> dict:
    """``{(rootname, increment): ImsetTruth}`` of the WFC3/IR and NICMOS ramp simulators
    (``cr_increment``: the 0-based, time-ordered increment a CR landed in)."""
    with np.load(truth["truth_npz"]) as npz:
        dep_cr = npz["dep_cr"].astype(np.int64)
        dep_y, dep_x, dep_e = npz["dep_y"], npz["dep_x"], npz["dep_e"]
        increment = npz["cr_increment"][dep_cr]
        file_index = npz["cr_file"][dep_cr]
    shape = tuple(int(s) for s in truth["science_shape"])
    out = {}
    for i, exposure in enumerate(truth["exposures"]):
        for k in range(len(exposure["sample_times"]) - 1):
            pick = (file_index == i) & (increment == k)
            out[(exposure["rootname"], k)] = ImsetTruth(
                shape, dep_y[pick].astype(np.int64) * shape[1] + dep_x[pick],
                dep_e[pick].astype(np.float64), dep_cr[pick])
    return out


def _noise(registry, name: str, files: list[Path], truth: dict) -> dict:
    """Per imset: the measured noise, e⁻ — 1.4826 × MAD of the calibrated imset over the
    pixels holding no CR charge."""
    entry = registry.entry(name)
    options = resolve_options(stage_params(stage("crstats"), entry),
                              plugin_defaults=entry.defaults.get("crstats", {}), cli={})
    measured = {}
    for path in files:
        exposure = registry.hooks.calibrate(detector=entry.detector, exposure=entry.read(path),
                                            options=options)
        for k, imset in enumerate(exposure.imsets):
            key = (exposure.rootname, k)
            sci = np.asarray(imset.sci, np.float64)
            assert sci.shape == truth[key].shape, (key, sci.shape, truth[key].shape)
            clean = np.ones(sci.size, bool)
            clean[truth[key].flat] = False
            values = sci.ravel()[clean]
            measured[key] = 1.4826 * float(np.median(np.abs(values - np.median(values))))
    return measured


def _perfect_count(t: ImsetTruth, threshold_e: float) -> int:
    """Objects of ≥ 3 truth pixels above ``threshold_e`` (8-connected), one imset."""
    return label_crs(t.charge_image() >= threshold_e, min_size=MIN_CR_PIXELS).n


# --------------------------------------------------------------------------- scoring
def _score(case: Case, store: Path, truth: dict, noise: dict) -> dict:
    crs = read_crs(store)
    found = eligible = n_objects = n_false = 0
    n_recorded = n_perfect = 0
    ratios, rates = [], []
    for row in read_exposures(store):
        root, eid = str(row["rootname"]), int(row["exposure_id"])
        offsets, index = read_pixels(store, eid)
        mine = np.asarray(crs["exposure_id"]) == eid
        imset = np.asarray(crs["imset"][mine])
        energy = np.asarray(crs["energy_e"][mine], np.float64)
        assert offsets.size == imset.size + 1 == int(row["n_cr"]) + 1
        assert set(imset.tolist()) <= {k for r, k in truth if r == root}
        assert row["rate"] == pytest.approx(row["n_cr"] / row["integration_time"]
                                            / row["area_cm2"])
        owner = np.repeat(np.arange(imset.size), np.diff(offsets))
        perfect = 0
        for (t_root, k), t in truth.items():
            if t_root != root:
                continue
            npix = t.shape[0] * t.shape[1]
            on_k = imset[owner] == k
            assert index[on_k].size == 0 or 0 <= index[on_k].min() <= index[on_k].max() < npix
            label = np.full(npix, -1, np.int64)  # stored object of each pixel
            label[index[on_k]] = owner[on_k]
            sigma = noise[(root, k)]
            # completeness: CRs with >= 3 pixels above COMPLETE_SIGMA x noise
            big = t.charge >= COMPLETE_SIGMA * sigma
            n_big = np.bincount(t.cr[big], minlength=t.cr.max(initial=-1) + 1)
            n_hit = np.bincount(t.cr[big], weights=label[t.flat[big]] >= 0,
                                minlength=n_big.size)
            countable = n_big >= MIN_CR_PIXELS
            eligible += int(countable.sum())
            found += int((countable & (n_hit >= 0.5 * n_big)).sum())
            # false detections and energies: the truth CRs each stored object touches
            touched = label[t.flat] >= 0
            pairs = np.unique(np.stack([label[t.flat][touched], t.cr[touched]]), axis=1)
            objects, n_touched = np.unique(pairs[0], return_counts=True)
            n_here = int(np.count_nonzero(imset == k))
            n_objects += n_here
            n_false += n_here - objects.size
            cr_of = dict(zip(pairs[0].tolist(), pairs[1].tolist()))
            totals = t.totals()
            for obj in objects[n_touched == 1]:
                if totals[cr_of[obj]] > ENERGY_MIN_E:
                    ratios.append(energy[obj] / totals[cr_of[obj]])
            perfect += _perfect_count(t, case.perfect_sigma * sigma)
        rates.append((root, float(row["rate"]),
                      perfect / row["integration_time"] / row["area_cm2"]))
        n_recorded += int(row["n_cr"])
        n_perfect += perfect
    return {"eligible": eligible, "completeness": found / eligible,
            "objects": n_objects, "false_fraction": n_false / n_objects,
            "n_energy": len(ratios), "energy_ratio": float(np.median(ratios)),
            "rate_ratio": n_recorded / n_perfect, "rates": rates}


@pytest.fixture(scope="module", params=CASES, ids=[c.detector for c in CASES])
def figures(request, tmp_path_factory):
    from hstcal_core.registry import build_registry

    case = request.param
    registry = build_registry()
    directory = tmp_path_factory.mktemp(case.detector)
    started = time.perf_counter()
    truth = registry.entry(case.detector).simulator(directory, kind="dark", seed=SEED,
                                                    **case.simulate)
    if isinstance(truth, DarkTruth):
        files = [directory / f for f in truth.files]
        imsets = _dark_truth(truth, registry.detector(case.detector).extra.get("chip"))
    else:
        files = [Path(f) for f in truth["files"]]
        imsets = _ramp_truth(truth)
    store = directory / "census.h5"
    result = run_stage("crstats", detector=case.detector, inputs=files, store=store,
                       registry=registry)
    assert result.ok, result.failures
    assert result.details["n_exposures"] == len(files)
    noise = _noise(registry, case.detector, files, imsets)
    scores = _score(case, store, imsets, noise)
    print(f"\n{case.detector}: {len(files)} darks, noise {min(noise.values()):.2f}-"
          f"{max(noise.values()):.2f} e-; completeness {scores['completeness']:.4f} of "
          f"{scores['eligible']} CRs >= 3 px; false {scores['false_fraction']:.4f} of "
          f"{scores['objects']} objects; median energy ratio {scores['energy_ratio']:.4f} "
          f"over {scores['n_energy']}; rate ratio {scores['rate_ratio']:.4f} (perfect "
          f"detector at {case.perfect_sigma:.2f} sigma: {case.why}); "
          f"{time.perf_counter() - started:.1f} s")
    for root, recorded, perfect in scores["rates"]:
        print(f"  {root}: recorded rate {recorded:.4f}, truth {perfect:.4f} CR cm-2 s-1")
    return case, scores


def _known_miss(request, case: Case, figure: str) -> None:
    if figure in case.xfail:
        request.applymarker(pytest.mark.xfail(reason=case.xfail[figure], strict=True))


def test_completeness(figures, request):
    case, scores = figures
    _known_miss(request, case, "completeness")
    assert scores["eligible"] > 500
    assert scores["completeness"] >= 0.98


def test_false_detections(figures, request):
    case, scores = figures
    _known_miss(request, case, "false")
    assert scores["objects"] > 500
    assert scores["false_fraction"] <= 0.01


def test_energy(figures, request):
    case, scores = figures
    _known_miss(request, case, "energy")
    assert scores["n_energy"] > 300
    assert scores["energy_ratio"] == pytest.approx(1.0, abs=0.02)


def test_rate(figures, request):
    case, scores = figures
    _known_miss(request, case, "rate")
    assert scores["rate_ratio"] == pytest.approx(1.0, rel=0.02)
