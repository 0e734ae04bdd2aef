#!/usr/bin/env python
"""Benchmark the ``drizzle`` stage against a bare AstroDrizzle call, and our alignment
verification against runastrodriz's overlap check, on the same inputs.

Input: three dithered WFC3/UVIS FLTs of one 2048x2048 chip each (hstcal_core.simulate.flt,
a star field with sky, noise and cosmic rays; seed 3), their association table.

1. **Stage overhead** (no alignment: one AstroDrizzle call inside the stage):
     bare   drizzlepac.astrodrizzle.AstroDrizzle on copies of the inputs, run in their
            directory (updatewcs=False, in_memory=True, context=True, clean=True);
     ours   run_stage("drizzle", ..., aposteriori=False) — input checks, copies into a
            scratch directory, WCS handling, the same AstroDrizzle call, provenance,
            headerlets (and without them), atomic commit, trailer.
   Twice: "all" AstroDrizzle steps, and the final drizzle only (steps=final /
   driz_separate=median=blot=driz_cr=False).  Ratio ours/bare printed (target <= 1.10).
2. **Verification cost**, on single-exposure and combined products made once by
   AstroDrizzle (runastrodriz's verification drizzle), clean and with one exposure
   moved by 2 pixels:
     anchor  SkyFootprint + astrometric_utils.max_overlap_diff + evaluate_overlap_diffs
             (drizzlepac 3.11, what runastrodriz.run_driz does);
     ours    hstcal_core.drizzle.verify: the same overlap rule (footprint included), and
             the full verification (overlap + registration check).
   Ratio anchor/ours printed (target >= 5) and the pass/fail answers side by side.

Run:  .venv/bin/python benchmarks/bench_drizzle.py [--size 2048] [--repeat 1]
      [--verify-repeat 3] [--workdir DIR] [--json PATH]

Timings never make the script exit non-zero.  Sockets are not needed (no network).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from astropy.io import fits

from hstcal_core import get_registry, run_stage
from hstcal_core.drizzle import verify
from hstcal_core.drizzle._thirdparty import import_drizzlepac, library_warnings
from hstcal_core.drizzle.astrodrizzle import run_astrodrizzle, single_images
from hstcal_core.drizzle.trailer import Trailer
from hstcal_core.drizzle.wcs import pipeline_default_wcs
from hstcal_core.simulate.flt import simulate_flt_asn

TARGET_OVERHEAD = 1.10
TARGET_VERIFY_SPEEDUP = 5.0


def _copy_inputs(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.suffix == ".fits":
            shutil.copyfile(f, dst / f.name)


def bare_astrodrizzle(inputs: Path, work: Path, asn: str, steps: str) -> float:
    _copy_inputs(inputs, work)
    astrodrizzle = import_drizzlepac("astrodrizzle")
    kwargs = {"output": asn.replace("_asn.fits", ""), "updatewcs": False, "preserve": False,
              "build": True, "runfile": "", "mdriztab": False, "context": True,
              "in_memory": True, "clean": True, "num_cores": 1, "resetbits": 4096}
    if steps == "final":
        kwargs.update(driz_separate=False, median=False, blot=False, driz_cr=False)
    old = os.getcwd()
    os.chdir(work)
    try:
        with Trailer.capture_stdout(), library_warnings():
            start = time.perf_counter()
            astrodrizzle.AstroDrizzle(asn, configobj=None, **kwargs)
            elapsed = time.perf_counter() - start
    finally:
        os.chdir(old)
    return elapsed


def our_stage(inputs: Path, out: Path, asn: str, steps: str, headerlets: bool) -> float:
    start = time.perf_counter()
    run_stage("drizzle", detector="wfc3_uvis", inputs=[inputs / asn], out=out,
              aposteriori=False, apriori=False, steps=steps, headerlets=headerlets)
    return time.perf_counter() - start


def verification_products(inputs: Path, work: Path, asn_id: str, shift_px: float):
    _copy_inputs(inputs, work)
    files = sorted(work.glob("*_flt.fits"))
    for f in files:
        pipeline_default_wcs(f)
    if shift_px:
        with fits.open(files[1], mode="update") as hdul:
            hdul["SCI", 1].header["CRPIX1"] += shift_px
    product = run_astrodrizzle(files, work, asn_id, "verify", good_bits=1360)
    return single_images(files), product


def best(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), times, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--stars", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=1, help="stage/AstroDrizzle runs")
    parser.add_argument("--verify-repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ["ASTROMETRY_STEP_CONTROL"] = "off"
    import_drizzlepac("runastrodriz")  # imports paid before any timing
    import_drizzlepac("haputils.astrometric_utils")

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_drizzle_"))
    inputs = work / "inputs"
    shutil.rmtree(inputs, ignore_errors=True)
    truth = simulate_flt_asn(inputs, get_registry().detector("wfc3_uvis"),
                             shape=(args.size, args.size), n_chips=1, n_exposures=3,
                             n_stars=args.stars, seed=3)
    asn = truth.asn_path.name
    print(f"inputs: 3 x {args.size}x{args.size} WFC3/UVIS FLTs ({truth.asn_id}) in {inputs}")
    results: dict = {"size": args.size, "stage": {}, "verification": {}}

    print("\n1. stage overhead (no alignment), best of", args.repeat)
    print(f"   {'steps':<6} {'bare (s)':>9} {'ours (s)':>9} {'ratio':>6} "
          f"{'ours, no hlet':>14} {'ratio':>6}")
    for steps in ("all", "final"):
        bare, ours, ours_nohlet = [], [], []
        for k in range(args.repeat):
            run = work / f"run_{steps}_{k}"
            shutil.rmtree(run, ignore_errors=True)
            bare.append(bare_astrodrizzle(inputs, run / "bare", asn, steps))
            ours.append(our_stage(inputs, run / "ours", asn, steps, True))
            ours_nohlet.append(our_stage(inputs, run / "ours_nohlet", asn, steps, False))
            shutil.rmtree(run, ignore_errors=True)
        b, o, n = min(bare), min(ours), min(ours_nohlet)
        results["stage"][steps] = {"bare_s": bare, "ours_s": ours, "ours_no_headerlets_s":
                                   ours_nohlet, "ratio": o / b, "ratio_no_headerlets": n / b}
        print(f"   {steps:<6} {b:9.2f} {o:9.2f} {o / b:6.3f} {n:14.2f} {n / b:6.3f}  "
              f"{'PASS' if o / b <= TARGET_OVERHEAD else 'MISS'} (target <= "
              f"{TARGET_OVERHEAD:.2f})")

    print("\n2. verification cost, best of", args.verify_repeat)
    print(f"   {'set':<8} {'anchor (s)':>10} {'ours overlap (s)':>16} {'ratio':>6} "
          f"{'ours full (s)':>13} {'anchor':>7} {'ours':>5} {'ours full':>9}")
    for case, shift in (("clean", 0.0), ("2px-off", 2.0)):
        singles, product = verification_products(inputs, work / f"verify_{case}",
                                                 truth.asn_id, shift)
        t_anchor, all_anchor, (ok_a, max_a, _) = best(
            lambda s=singles, p=product: verify.anchor_overlap_check(p, s),
            args.verify_repeat)
        t_ours, all_ours, ours = best(
            lambda s=singles, p=product: verify.verify_products(s, p, registration_limit=None),
            args.verify_repeat)
        t_full, all_full, full = best(
            lambda s=singles, p=product: verify.verify_products(s, p), args.verify_repeat)
        same = ok_a == ours.verified and abs(max_a - ours.max_overlap_diff) < 1e-9
        results["verification"][case] = {
            "anchor_s": all_anchor, "ours_overlap_s": all_ours, "ours_full_s": all_full,
            "ratio": t_anchor / t_ours, "ratio_full": t_anchor / t_full,
            "anchor_verified": ok_a, "anchor_max_diff": max_a,
            "ours_verified": ours.verified, "ours_max_diff": ours.max_overlap_diff,
            "ours_full_verified": full.verified, "max_offset_px": full.max_offset_px,
            "same_answer": same}
        print(f"   {case:<8} {t_anchor:10.2f} {t_ours:16.2f} {t_anchor / t_ours:6.1f} "
              f"{t_full:13.2f} {ok_a!s:>7} {ours.verified!s:>5} "
              f"{full.verified!s:>9}  max diff {max_a:.4f} vs {ours.max_overlap_diff:.4f}"
              f"  {'PASS' if t_anchor / t_ours >= TARGET_VERIFY_SPEEDUP and same else 'MISS'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
