"""Campaign throughput: one simulated STIS anneal month on 0/1/2 local workers and a Dask
local cluster, as ratios to one worker.

    .venv/bin/python benchmarks/bench_campaign.py [--workers 1 2] [--dask 2] [--repeat 1]
                                                  [--keep DIR] [--json PATH]

A script, not a test: it prints a table and exits 0.  Every configuration runs the same
campaign (stage ``anneal``, one anneal period) on the same local archive, each into a
fresh output directory, in one process, one after another.  The time is the whole
``Campaign.run``: archive index, query, planning, the tasks on the workers (including
worker start-up), and the driver storing the products.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

from hstcal_core.campaign import Campaign
from hstcal_core.reffiles.anneal import mjd_to_datetime, read_anneal_table
from hstcal_stis.simulate import simulate_anneal_month


def campaign_yaml(where: Path, archive: Path, table: Path) -> Path:
    period = read_anneal_table(table)[1]  # the simulated month, between its neighbours
    start = mjd_to_datetime(period.start_mjd + 0.5).date()
    end = mjd_to_datetime(period.end_mjd - 0.5).date()
    data = {"name": "bench", "start": str(start), "end": str(end),
            "chunking": "anneal", "anneal_table": str(table), "out": str(where / "products"),
            "archive": {"kind": "local", "root": str(archive)},
            "detectors": {"stis_ccd": {"stages": ["anneal"]}}}
    path = where / "campaign.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_once(config: Path, **executor) -> tuple[float, int]:
    out = Path(yaml.safe_load(config.read_text())["out"])
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    report = Campaign.from_yaml(config).run(progress=False, **executor)
    seconds = time.perf_counter() - t0
    if not report.ok or not report.done:
        raise SystemExit(f"benchmark campaign failed: {report.summary()} {report.failed}")
    return seconds, report.products


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--dask", type=int, nargs="*", default=[1, 2],
                    help="local Dask cluster sizes to run (none: skip Dask)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--keep", type=Path, help="work directory to keep (default: a temp dir)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="hstcal-bench-campaign-"))
    archive = work / "archive"
    if not (archive / "anneal_table.yml").exists():
        print(f"simulating one STIS anneal month in {archive} ...", flush=True)
        simulate_anneal_month(archive, seed=3)
    n_files = len(list(archive.glob("*_raw.fits")))
    config = campaign_yaml(work, archive, archive / "anneal_table.yml")
    runs = [(f"{w} worker(s)" if w else "in-process (--workers 0)", {"workers": w})
            for w in args.workers]
    runs += [(f"Dask LocalCluster, {n} worker(s)", {"dask_local": n}) for n in args.dask]
    results = {}
    for label, executor in runs:
        times = []
        for _ in range(args.repeat):
            seconds, products = run_once(config, **executor)
            times.append(seconds)
        results[label] = {"seconds": min(times), "all": times, "products": products}
        print(f"  {label:<34} {min(times):7.2f} s   ({products} products)", flush=True)
    base_label = next((lbl for lbl, ex in runs if ex == {"workers": 1}), runs[0][0])
    base = results[base_label]["seconds"]
    print(f"\none anneal month: {n_files} raw files; CPUs: {os.cpu_count()}")
    print(f"{'configuration':<36}{'seconds':>9}{'files/min':>11}{'speed-up vs ' + base_label:>30}")
    for label, r in results.items():
        print(f"{label:<36}{r['seconds']:>9.2f}{60 * n_files / r['seconds']:>11.1f}"
              f"{base / r['seconds']:>30.2f}")
    if args.json:
        args.json.write_text(json.dumps({"files": n_files, "cpus": os.cpu_count(),
                                         "results": results}, indent=2))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
