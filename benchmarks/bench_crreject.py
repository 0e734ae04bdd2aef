#!/usr/bin/env python
"""Benchmark hstcal_core's ocrreject-equivalent ``crreject`` against the peers.

One synthetic dark-like stack (n images of size x size float32, DN) with injected
cosmic rays is built once; then, in this one process and one after another, it is
combined by

  ours      hstcal_core.algorithms.crreject.crreject (5,4,3 sigma, median, mode sky)
  sigclip   astropy.stats.sigma_clip(stack, sigma=3, axis=0, maxiters=5) + masked mean
  ccdproc   ccdproc.Combiner(list of CCDData) .sigma_clipping(3, 3, np.ma.median)
            .average_combine()

For each method it reports wall time (best of --repeat untraced runs), peak memory
above the pre-call baseline (tracemalloc, in a separate traced run: the headline;
plus the peak-RSS delta of the untraced runs, via /proc/self/clear_refs + VmHWM on
Linux, psutil sampling otherwise), and accuracy against the injected truth.

Run:  .venv/bin/python benchmarks/bench_crreject.py [--n 32] [--size 1024]
      [--repeat 1] [--seed 12345] [--json results.json] [--skip ccdproc]

Timing never makes the script exit non-zero; PASS/MISS is informational.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import sys
import threading
import time
import tracemalloc

import numpy as np

# Import everything up front so no method's first timed run pays for imports.
import astropy
import ccdproc
import scipy
from astropy.nddata import CCDData
from astropy.stats import sigma_clip

from hstcal_core.algorithms.crreject import CRRejectParams, crreject

MiB = 1024.0 * 1024.0

# Targets from the issue.
TARGET_SPEEDUP_VS_SIGCLIP = 10.0
TARGET_PEAK_MEM_X_STACK = 3.0


# --------------------------------------------------------------------------- data

def make_stack(n: int, size: int, seed: int, *, gain: float = 1.0, read_noise_e: float = 6.0,
               cr_fraction: float = 0.02):
    """Synthetic dark-like stack in DN with injected cosmic rays.

    Returns ``(stack, truth_signal, cr_mask, clean_mean)``:
    stack float32 (n, size, size); truth_signal float32 (size, size), the noiseless
    per-pixel signal (identical in every image); cr_mask bool (n, size, size), the
    injected CR pixels; clean_mean float64 (size, size), the mean of the stack
    *before* CR injection (the best any combiner could do: its RMS vs truth is the
    noise floor).
    """
    rng = np.random.default_rng(seed)
    shape = (size, size)
    # Dark: ~30 DN pedestal with mild pixel-to-pixel structure, a smooth gradient,
    # and ~0.1% warm/hot pixels (tens to hundreds of DN) that are stable in time.
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    truth = (25.0 + 6.0 * xx + 4.0 * yy
             + rng.gamma(shape=4.0, scale=0.75, size=shape)).astype(np.float32)
    nhot = max(1, int(1e-3 * size * size))
    hot = rng.integers(0, size * size, nhot)
    truth.flat[hot] += rng.lognormal(mean=np.log(80.0), sigma=0.9, size=nhot).astype(np.float32)
    del yy, xx

    rn_dn = read_noise_e / gain
    stack = np.empty((n, size, size), np.float32)
    crmask = np.zeros((n, size, size), bool)
    clean_sum = np.zeros(shape, np.float64)
    # CR events: short tracks of 1..6 pixels (mean ~2.7) along one of 8 directions,
    # with a few extra pixels of charge diffusion beside the track.
    dirs = np.array([(0, 1), (1, 0), (1, 1), (1, -1), (0, -1), (-1, 0), (-1, -1), (-1, 1)])
    mean_pix_per_event = 3.8  # tracks + side pixels, after overlap (calibrated empirically)
    nevents = max(1, int(round(cr_fraction * size * size / mean_pix_per_event)))
    for k in range(n):
        img = rng.poisson(truth * gain).astype(np.float32) / np.float32(gain)
        img += rng.normal(0.0, rn_dn, shape).astype(np.float32)
        clean_sum += img
        cy = rng.integers(0, size, nevents)
        cx = rng.integers(0, size, nevents)
        length = rng.choice([1, 1, 2, 2, 3, 3, 4, 5, 6], nevents)
        d = dirs[rng.integers(0, 8, nevents)]
        peak = rng.lognormal(mean=np.log(600.0), sigma=0.8, size=nevents)
        dep = np.zeros(shape, np.float32)
        for j in range(6):
            sel = length > j
            y = cy[sel] + j * d[sel, 0]
            x = cx[sel] + j * d[sel, 1]
            ok = (y >= 0) & (y < size) & (x >= 0) & (x < size)
            amp = peak[sel] * rng.uniform(0.4, 1.0, sel.sum())
            np.add.at(dep, (y[ok], x[ok]), amp[ok].astype(np.float32))
            # diffusion halo: with prob 0.3 a side pixel gets 15-40% of the charge
            side = rng.random(sel.sum()) < 0.3
            sy = y + d[sel, 1] * side  # perpendicular offset
            sx = x - d[sel, 0] * side
            ok2 = ok & side & (sy >= 0) & (sy < size) & (sx >= 0) & (sx < size)
            np.add.at(dep, (sy[ok2], sx[ok2]),
                      (amp[ok2] * rng.uniform(0.15, 0.4, ok2.sum())).astype(np.float32))
        # every deposited pixel is >= ~0.15*0.4*min(peak); clip to "hundreds+" DN
        hitk = dep > 0
        dep[hitk] = np.maximum(dep[hitk], 100.0)
        crmask[k] = hitk
        stack[k] = img + dep
    return stack, truth, crmask, clean_sum / n


# ------------------------------------------------------------------------ memory

def _read_status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _can_reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return _read_status("VmHWM") is not None
    except OSError:
        return False


class RSSPeak:
    """Peak RSS above the RSS at entry, for the enclosed block.

    Linux: resets the high-water mark (``echo 5 > /proc/self/clear_refs``) and reads
    VmHWM afterwards -- exact, no sampling.  Elsewhere: psutil polling every 5 ms if
    psutil is installed, else ``None``.
    """

    method = None

    def __init__(self):
        if RSSPeak.method is None:
            if _can_reset_hwm():
                RSSPeak.method = "VmHWM reset (/proc/self/clear_refs)"
            else:
                try:
                    import psutil  # noqa: F401
                    RSSPeak.method = "psutil polling (5 ms)"
                except ImportError:
                    RSSPeak.method = "unavailable"
        self.delta = None

    def __enter__(self):
        gc.collect()
        if RSSPeak.method.startswith("VmHWM"):
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self.base = _read_status("VmRSS")
        elif RSSPeak.method.startswith("psutil"):
            import psutil
            self._proc = psutil.Process()
            self.base = self._proc.memory_info().rss
            self._peak = self.base
            self._stop = threading.Event()

            def poll():
                while not self._stop.is_set():
                    self._peak = max(self._peak, self._proc.memory_info().rss)
                    self._stop.wait(0.005)
            self._thread = threading.Thread(target=poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if RSSPeak.method.startswith("VmHWM"):
            self.delta = _read_status("VmHWM") - self.base
        elif RSSPeak.method.startswith("psutil"):
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, self._proc.memory_info().rss)
            self.delta = self._peak - self.base
        return False


# ----------------------------------------------------------------------- methods
# Each returns (combined_mean_image, flagged_mask) -- both per the method's own
# conventions converted to "mean DN per image" and "(n, ny, nx) bool".

def run_ours(stack, dq):
    n = stack.shape[0]
    res = crreject(stack, dq, exptimes=[1000.0] * n, read_noise_dn=[6.0] * n, gains=[1.0] * n,
                   params=CRRejectParams(crsigmas=(5, 4, 3), initgues="median", skysub="mode"))
    # ocrreject's sci is the SUM over inputs (ave*sum(efac) + sum(sky)); mean = sci/n.
    return res.sci / np.float32(n), res.masks


def run_sigclip(stack, dq):
    clipped = sigma_clip(stack, sigma=3, axis=0, maxiters=5)
    mean = clipped.mean(axis=0)
    return np.ma.getdata(mean), np.ma.getmaskarray(clipped)


def run_sigclip_generic(stack, dq):
    # astropy's generic (pre-6.0) path: the speed older astropy gave every user
    clipped = sigma_clip(stack, sigma=3, axis=0, maxiters=5, cenfunc=np.nanmedian,
                         stdfunc=np.nanstd)
    mean = clipped.mean(axis=0)
    return np.ma.getdata(mean), np.ma.getmaskarray(clipped)


def run_ccdproc(stack, dq):
    ccds = [CCDData(stack[k], unit="adu") for k in range(stack.shape[0])]
    comb = ccdproc.Combiner(ccds)
    comb.sigma_clipping(low_thresh=3, high_thresh=3, func=np.ma.median)
    out = comb.average_combine()
    return np.asarray(out.data), np.ma.getmaskarray(comb.data_arr)


METHODS = {
    "ours": ("crreject (5,4,3σ, median, sky=mode)", run_ours),
    "sigclip": ("astropy sigma_clip(σ=3, maxiters=5) + mean", run_sigclip),
    "sigclip_generic": ("astropy sigma_clip, generic nanmedian/nanstd path", run_sigclip_generic),
    "ccdproc": ("ccdproc Combiner sigma_clipping(3,3,ma.median) + average", run_ccdproc),
}


# ---------------------------------------------------------------------- measure

def accuracy(mean_img, flagged, truth, crmask, clean_mean):
    ncr = int(crmask.sum())
    nclean = crmask.size - ncr
    tp = int(np.count_nonzero(flagged & crmask))
    fp = int(np.count_nonzero(flagged & ~crmask))
    diff = np.asarray(mean_img, np.float64) - truth
    finite = np.isfinite(diff)
    resid = diff[finite]
    # pixels whose combined value is hit by a missed CR (> 5 DN above the ideal mean)
    bad = np.count_nonzero(np.asarray(mean_img, np.float64)[finite] - clean_mean[finite] > 5.0)
    return {
        "cr_completeness": tp / ncr if ncr else float("nan"),
        "false_flag_fraction": fp / nclean if nclean else float("nan"),
        "n_flagged": int(np.count_nonzero(flagged)),
        "rms_vs_truth_dn": float(np.sqrt(np.mean(resid ** 2))),
        "median_bias_vs_truth_dn": float(np.median(resid)),
        "rms_vs_cr_free_mean_dn": float(np.sqrt(np.mean(
            (np.asarray(mean_img, np.float64)[finite] - clean_mean[finite]) ** 2))),
        "n_pixels_cr_residual_gt5dn": int(bad),
        "n_nonfinite_output": int((~finite).sum()),
    }


def measure(name, func, stack, dq, truth, crmask, clean_mean, repeat):
    times, rss = [], []
    acc = None
    for r in range(repeat):
        gc.collect()
        with RSSPeak() as rp:
            t0 = time.perf_counter()
            out = func(stack, dq)
            t1 = time.perf_counter()
        times.append(t1 - t0)
        rss.append(rp.delta)
        if acc is None:
            acc = accuracy(*out, truth, crmask, clean_mean)
        del out
        print(f"  {name}: run {r + 1}/{repeat}: {t1 - t0:.2f} s", flush=True)
    # separate traced run for the tracemalloc peak (tracing adds overhead)
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    t0 = time.perf_counter()
    out = func(stack, dq)
    t_traced = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del out
    gc.collect()
    print(f"  {name}: traced run: {t_traced:.2f} s, tracemalloc peak {(peak - base) / MiB:.1f} MiB",
          flush=True)
    rss_valid = [x for x in rss if x is not None]
    return {
        "time_best_s": min(times),
        "times_s": times,
        "time_traced_run_s": t_traced,
        "peak_mem_tracemalloc_bytes": int(peak - base),
        "peak_rss_delta_bytes": int(max(rss_valid)) if rss_valid else None,
        **acc,
    }


def machine_info():
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        mem = None
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "ncpu": os.cpu_count(),
        "mem_total_bytes": mem,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "astropy": astropy.__version__,
        "ccdproc": ccdproc.__version__,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=32, help="number of images (default 32)")
    ap.add_argument("--size", type=int, default=1024, help="image side in pixels (default 1024)")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs per method; best is reported")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    ap.add_argument("--skip", action="append", default=[], choices=sorted(METHODS),
                    help="skip a method (repeatable)")
    args = ap.parse_args(argv)

    info = machine_info()
    print(f"# crreject benchmark  {_dt.datetime.now().isoformat(timespec='seconds')}")
    print(f"# {info['cpu']} x{info['ncpu']}, python {info['python']}, numpy {info['numpy']}, "
          f"scipy {info['scipy']}, astropy {info['astropy']}, ccdproc {info['ccdproc']}")
    t0 = time.perf_counter()
    stack, truth, crmask, clean_mean = make_stack(args.n, args.size, args.seed)
    dq = np.zeros(stack.shape, np.uint16)
    stack_bytes = stack.nbytes
    cr_frac = float(crmask.mean())
    print(f"# stack {stack.shape} float32 = {stack_bytes / MiB:.1f} MiB, built in "
          f"{time.perf_counter() - t0:.1f} s; CR pixels {cr_frac:.2%} per image; "
          f"mean signal {truth.mean():.1f} DN; seed {args.seed}")
    floor = float(np.sqrt(np.mean((clean_mean - truth) ** 2)))
    print(f"# noise floor: RMS(mean of CR-free stack - truth) = {floor:.3f} DN")

    # compile (or load from numba's cache) our kernels on a tiny stack, outside the timings
    run_ours(stack[:3, :16, :16].copy(), dq[:3, :16, :16].copy())

    results = {}
    for key, (label, func) in METHODS.items():
        if key in args.skip:
            continue
        print(f"running {key}: {label}", flush=True)
        results[key] = measure(key, func, stack, dq, truth, crmask, clean_mean, args.repeat)

    # ------------------------------------------------------------------ report
    print()
    hdr = (f"{'method':<8} {'time[s]':>8} {'tracemalloc':>12} {'x stack':>8} {'RSS Δ':>9} "
           f"{'CR compl.':>9} {'false flag':>10} {'RMS vs':>8} {'RMS vs':>8} {'CR-res':>7}")
    hdr2 = (f"{'':<8} {'(best)':>8} {'peak [MiB]':>12} {'':>8} {'[MiB]':>9} "
            f"{'':>9} {'fraction':>10} {'truth':>8} {'CR-free':>8} {'>5DN px':>7}")
    print(hdr)
    print(hdr2)
    print("-" * len(hdr))
    for key, r in results.items():
        rssd = r["peak_rss_delta_bytes"]
        print(f"{key:<8} {r['time_best_s']:8.3f} {r['peak_mem_tracemalloc_bytes'] / MiB:12.1f} "
              f"{r['peak_mem_tracemalloc_bytes'] / stack_bytes:8.2f} "
              f"{(rssd / MiB if rssd is not None else float('nan')):9.1f} "
              f"{r['cr_completeness']:9.4f} {r['false_flag_fraction']:10.5f} "
              f"{r['rms_vs_truth_dn']:8.3f} {r['rms_vs_cr_free_mean_dn']:8.3f} "
              f"{r['n_pixels_cr_residual_gt5dn']:7d}")
    print(f"(noise floor RMS vs truth: {floor:.3f} DN; memory headline = tracemalloc peak above "
          f"baseline in a separate traced run; RSS Δ = peak RSS above baseline in the untraced "
          f"runs, via {RSSPeak.method})")

    summary = {}
    print()
    if "ours" in results:
        ours = results["ours"]
        if "sigclip" in results:
            s = results["sigclip"]["time_best_s"] / ours["time_best_s"]
            summary["speedup_vs_sigclip"] = s
            ok = s >= TARGET_SPEEDUP_VS_SIGCLIP
            summary["speedup_target_pass"] = ok
            print(f"time(sigma_clip)/time(ours) = {s:6.2f}x   target >= "
                  f"{TARGET_SPEEDUP_VS_SIGCLIP:g}x : {'PASS' if ok else 'MISS'}")
        if "sigclip_generic" in results:
            s = results["sigclip_generic"]["time_best_s"] / ours["time_best_s"]
            summary["speedup_vs_sigclip_generic"] = s
            print(f"time(sigma_clip generic)/time(ours) = {s:6.2f}x")
        if "ccdproc" in results:
            s = results["ccdproc"]["time_best_s"] / ours["time_best_s"]
            summary["speedup_vs_ccdproc"] = s
            print(f"time(ccdproc)/time(ours)    = {s:6.2f}x")
        m = ours["peak_mem_tracemalloc_bytes"] / stack_bytes
        summary["ours_peak_mem_x_stack"] = m
        ok = m <= TARGET_PEAK_MEM_X_STACK
        summary["memory_target_pass"] = ok
        line = (f"ours peak memory (tracemalloc) = {m:5.2f}x stack ({stack_bytes / MiB:.0f} MiB)"
                f"   target <= {TARGET_PEAK_MEM_X_STACK:g}x : {'PASS' if ok else 'MISS'}")
        if ours["peak_rss_delta_bytes"] is not None:
            mr = ours["peak_rss_delta_bytes"] / stack_bytes
            summary["ours_peak_rss_x_stack"] = mr
            line += f"   [RSS Δ: {mr:.2f}x]"
        print(line)

    if args.json:
        payload = {
            "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
            "args": vars(args),
            "machine": info,
            "stack_bytes": stack_bytes,
            "cr_pixel_fraction": cr_frac,
            "noise_floor_rms_dn": floor,
            "memory_headline": "tracemalloc peak above baseline (separate traced run)",
            "rss_method": RSSPeak.method,
            "targets": {"speedup_vs_sigclip_min": TARGET_SPEEDUP_VS_SIGCLIP,
                        "peak_mem_x_stack_max": TARGET_PEAK_MEM_X_STACK},
            "results": results,
            "summary": summary,
        }
        with open(args.json, "w") as fh:
            json.dump(payload, fh, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
