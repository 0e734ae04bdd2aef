"""``hstcal campaign run|status CONFIG.yaml``."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import click

from .campaign import Campaign

__all__ = ["campaign"]


@click.group()
def campaign() -> None:
    """Resumable campaigns: stages over months or anneal periods of an archive."""


@campaign.command("run")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Local worker processes (0: in this process; default: CPUs).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Use a running dask.distributed scheduler, e.g. tcp://host:8786.")
@click.option("--dask-local", type=click.IntRange(min=1), default=None, metavar="N",
              help="Start a local Dask cluster with N worker processes.")
@click.option("--retry-failed", is_flag=True, help="Also rerun chunks that failed before.")
@click.option("--keep-downloads", is_flag=True, default=None,
              help="Keep scratch downloads after their chunk is stored.")
@click.option("--progress/--no-progress", default=None,
              help="Force the progress bar on or off (default: only on a terminal).")
def run_cmd(config: Path, workers, scheduler, dask_local, retry_failed, keep_downloads,
            progress) -> None:
    """Run every chunk of CONFIG not yet done (a rerun resumes)."""
    c = Campaign.from_yaml(config)
    report = c.run(workers=workers, scheduler=scheduler, dask_local=dask_local,
                   retry_failed=retry_failed, keep_downloads=keep_downloads, progress=progress)
    click.echo(report.summary())
    for unit, error in report.failed:
        click.echo(f"failed: {unit}: {error}", err=True)
    if not report.ok:
        sys.exit(1)


@campaign.command("status")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--exposures", is_flag=True, help="Also list every exposure outcome.")
def status_cmd(config: Path, as_json: bool, exposures: bool) -> None:
    """Show each chunk's state (pending/running/done/failed/inactive) and counts."""
    c = Campaign.from_yaml(config)
    rows = c.status()
    exp = c.exposures() if exposures else []
    if as_json:
        click.echo(json.dumps({
            "campaign": c.config.name,
            "chunks": [{"detector": r.detector, "stage": r.stage, "chunk": r.chunk,
                        "status": r.status, "error": r.error, "attempts": r.attempts,
                        "processed": r.n_processed, "rejected": r.n_rejected,
                        "products": r.n_products, "problems": list(r.problems)} for r in rows],
            **({"exposures": exp} if exposures else {}),
        }, indent=2))
        return
    counts = Counter(r.status for r in rows)
    click.echo(f"campaign {c.config.name}: " + ", ".join(f"{n} {s}" for s, n in
                                                          sorted(counts.items())))
    width = max((len(r.chunk) for r in rows), default=5)
    for r in rows:
        line = (f"  {r.detector:<14} {r.stage:<10} {r.chunk:<{width}} {r.status:<8} "
                f"{r.n_processed:>4} processed {r.n_rejected:>4} rejected {r.n_products:>4} products")
        if r.error:
            line += f"  error: {r.error}"
        click.echo(line)
    for e in exp:
        reason = f"  ({e['reason']})" if e["reason"] else ""
        click.echo(f"    {e['chunk']} {e['detector']} {e['rootname']} {e['status']}{reason}")
