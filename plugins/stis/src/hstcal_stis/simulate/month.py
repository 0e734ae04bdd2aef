"""A complete synthetic anneal month: the refstis weekly products and the anneal table."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from astropy.time import Time

from hstcal_core.fitsio import atomic_path
from .checks import _check_float, _check_int
from .frames import simulate_stis_ccd
from .headers import _PROPOSID, _iso, _program_id
from .truth import MonthTruth, SimTruth

log = logging.getLogger(__name__)


def _whole_second(mjd: float) -> datetime:
    """UTC datetime of ``mjd`` rounded to the second (YAML timestamps of refstis tables)."""
    return (_iso(mjd) + timedelta(microseconds=500_000)).replace(microsecond=0)


def simulate_anneal_month(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    start_mjd: float = 55600.0,
    days: float = 28.3,
    bias_files_per_week: int = 3,
    binned_bias_files: int = 4,
    gain4_files_per_biweek: int = 2,
    darks_per_week: int = 2,
    dark_exptime: float = 1100.0,
    neighbour_days: float = 28.0,
    **kwargs: Any,
) -> MonthTruth:
    """Write a complete anneal month of STIS CCD raws and an anneal table.

    Contents (refstis weekly products): gain-1 1x1 biases spread over the four
    weeks (``bias_files_per_week`` × 2 imsets), gain-1 2x2 biases in the first
    week (``binned_bias_files`` × 2 imsets, above the refbias minimum of 7 imsets),
    gain-4 1x1 biases per bi-week (``gain4_files_per_biweek`` × 2 imsets) and gain-1
    1x1 darks (``darks_per_week`` × 1 imset of ``dark_exptime`` s).  Every exposure
    lies well inside its week (≥ 0.5 day from the edges of equal-length weeks), so
    any sensible week split assigns it the same way, and never in the first or last
    hour of the month.

    Parameters
    ----------
    out_dir : path
        Receives the raws, ``anneal_table.yml`` and ``truth.json`` (+ one
        ``truth_<group>.json/.npz`` per group).
    seed : int
        Seed of the month; each group gets its own seed derived from it.
    start_mjd, days : float
        Start (end of the previous anneal) and length of the month (≥ 8 days).
    bias_files_per_week, binned_bias_files, gain4_files_per_biweek, darks_per_week : int
        Files per group (0 leaves a group out).
    dark_exptime : float
        EXPTIME of the darks, s.
    neighbour_days : float
        Length of the neighbouring months written to the anneal table.
    **kwargs
        Passed to every :func:`simulate_stis_ccd` call (e.g. ``cr_rate_per_cm2_s``,
        ``hot_pixel_growth_per_day`` for the darks).

    Returns
    -------
    MonthTruth
    """
    seed = _check_int("seed", seed, 0)
    start_mjd = _check_float("start_mjd", start_mjd)
    days = _check_float("days", days, low=8.0)
    neighbour_days = _check_float("neighbour_days", neighbour_days, low=0.0, strict=True)
    counts = {name: _check_int(name, value, 0, 36**2) for name, value in (
        ("bias_files_per_week", bias_files_per_week), ("binned_bias_files", binned_bias_files),
        ("gain4_files_per_biweek", gain4_files_per_biweek), ("darks_per_week", darks_per_week))}
    for forbidden in ("kind", "count", "gain", "binning", "start_times_mjd", "truth_name",
                      "program_id", "nimsets", "exptime"):
        if forbidden in kwargs:
            raise ValueError(f"{forbidden} is set by simulate_anneal_month for each group; "
                             "it cannot be passed")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    t_start = _whole_second(start_mjd)
    t_end = _whole_second(start_mjd + days)
    start = float(Time(t_start, scale="utc").mjd)
    end = float(Time(t_end, scale="utc").mjd)
    week = (end - start) / 4.0
    biweek = (end - start) / 2.0
    # Offsets (days) from the start of each (bi-)week, 0.5..5.5 d: inside a 7-day week
    # whether the weeks are equal (7.075 d) or refstis-like (7, 7, 7, 7.3 d).
    plan = {
        "bias_g1_1x1": ("bias", 1, "1x1", 2, 0.0, [start + w * week + o for w in range(4)
                        for o in np.linspace(1.0, 5.0, counts["bias_files_per_week"])]),
        "bias_g1_2x2": ("bias", 1, "2x2", 2, 0.0, [start + o for o in
                        np.linspace(0.5, 5.5, counts["binned_bias_files"])]),
        "bias_g4_1x1": ("bias", 4, "1x1", 2, 0.0, [start + b * biweek + o for b in range(2)
                        for o in np.linspace(1.5, 8.5, counts["gain4_files_per_biweek"])]),
        "dark_g1_1x1": ("dark", 1, "1x1", 1, dark_exptime, [start + w * week + o for w in range(4)
                        for o in np.linspace(1.25, 4.25, counts["darks_per_week"])]),
    }
    groups: dict[str, SimTruth] = {}
    used: set[str] = set()
    jitter_rng = np.random.default_rng([seed, 0x3047])
    for n, (name, (kind, gain, binning, nimsets, exptime, times)) in enumerate(plan.items()):
        if not times:
            continue
        # Up to ±0.2 d of scheduling jitter keeps ≥ 0.3 d from every week edge.
        times = list(np.asarray(times) + jitter_rng.uniform(-0.2, 0.2, len(times)))
        group_seed = int(np.random.SeedSequence([seed, n]).generate_state(1)[0])
        salt = 0
        prog = _program_id(kind, gain, binning, group_seed)
        while prog in used:  # keep ROOTNAMEs of the month unique
            salt += 1
            prog = _program_id(kind, gain, binning, group_seed + salt)
        used.add(prog)
        groups[name] = simulate_stis_ccd(
            out_dir, kind=kind, count=len(times), seed=group_seed, gain=gain, binning=binning,
            nimsets=nimsets, exptime=exptime, start_times_mjd=times, program_id=prog,
            truth_name=f"truth_{name}", **kwargs)

    darks = []
    if "dark_g1_1x1" in groups:
        truth = groups["dark_g1_1x1"]
        for root, t0 in zip(truth.rootnames, truth.expstart_mjd[:, 0]):
            darks.append({"datetime": _whole_second(float(t0)), "exposure": root.upper(),
                          "exptime": float(truth.exptime_s), "proposid": _PROPOSID["dark"]})
    t_prev = _whole_second(start - neighbour_days)
    t_next = _whole_second(end + neighbour_days)
    table = [{"index": 0, "start": t_prev, "end": t_start, "darks": []},
             {"index": 1, "start": t_start, "end": t_end, "darks": darks},
             {"index": 2, "start": t_end, "end": t_next, "darks": []}]
    table_path = out_dir / "anneal_table.yml"
    with atomic_path(table_path) as tmp:
        tmp.write_text(yaml.safe_dump(table, default_flow_style=False, sort_keys=True))
    month = MonthTruth(groups=groups, anneal_table=table_path, anneal_index=1, start_mjd=start,
                       end_mjd=end, seed=seed)
    month.save(out_dir)
    log.info("simulated anneal month %.3f–%.3f: %d files in %s", start, end, len(month.files),
             out_dir)
    return month


def simulate_anneal_months(
    out_dir: str | os.PathLike,
    *,
    months: int = 3,
    seed: int = 0,
    start_mjd: float = 55600.0,
    days: float = 28.3,
    neighbour_days: float = 28.0,
    **kwargs: Any,
) -> list[MonthTruth]:
    """Consecutive anneal months (``month_01/``, ``month_02/``, ...) and one anneal table.

    Each month is :func:`simulate_anneal_month` (``kwargs`` go to it, e.g.
    ``bias_files_per_week=1``) with its own seed; ``out_dir/anneal_table.yml`` lists
    them all (indices 1..months) between two neighbouring months, as a campaign over
    a local archive of several months needs.

    Returns
    -------
    list of MonthTruth
    """
    months = _check_int("months", months, 1, 240)
    days = _check_float("days", days, low=8.0)
    out_dir = Path(out_dir)
    truths = []
    for k in range(months):
        truths.append(simulate_anneal_month(
            out_dir / f"month_{k + 1:02d}", seed=seed * 1000 + k, start_mjd=start_mjd + k * days,
            days=days, neighbour_days=neighbour_days, **kwargs))
    table = [{"index": 0, "start": _whole_second(truths[0].start_mjd - neighbour_days),
              "end": _whole_second(truths[0].start_mjd), "darks": []}]
    for k, truth in enumerate(truths, start=1):
        own = yaml.safe_load(Path(truth.anneal_table).read_text())[1]
        table.append({**own, "index": k})
    table.append({"index": months + 1, "start": _whole_second(truths[-1].end_mjd),
                  "end": _whole_second(truths[-1].end_mjd + neighbour_days), "darks": []})
    with atomic_path(out_dir / "anneal_table.yml") as tmp:
        tmp.write_text(yaml.safe_dump(table, default_flow_style=False, sort_keys=True))
    return truths
