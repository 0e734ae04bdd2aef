"""``hstcal lightcurve ingest|reset``: the hstlc flow over a configured directory tree."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli_group import HstcalGroup

__all__ = ["lightcurve"]


@click.group(cls=HstcalGroup)
def lightcurve() -> None:
    """TIME-TAG lightcurves: ingest a directory of event files, or reset the flow."""


_CONFIG = click.option("--config", "config_path", required=True,
                       type=click.Path(dir_okay=False, path_type=Path),
                       help="hstlc.yaml: directories, database, lightcurve parameters.")


@lightcurve.command("ingest")
@_CONFIG
def ingest_command(config_path: Path) -> None:
    """Make lightcurves, composites and quicklooks of everything in the ingest directory."""
    from .timetag.config import load_ingest_config
    from .timetag.ingest import ingest

    report = ingest(load_ingest_config(config_path))
    for root in report.ingested:
        click.echo(f"ingested  {root}")
    for root in report.resumed:
        click.echo(f"resumed   {root}")
    for root, reason in report.bad:
        click.echo(f"bad_data  {root}: {reason}")
    for path in report.composites:
        click.echo(f"composite {path}")
    for path in report.conflicts:
        click.echo(f"CONFLICT  {path} (left in place)", err=True)
    click.echo(f"{len(report.ingested)} ingested, {len(report.bad)} refused, "
               f"{len(report.composites)} composite(s) written")
    if report.conflicts:
        sys.exit(1)


@lightcurve.command("reset")
@_CONFIG
@click.option("--database", "reset_db", is_flag=True, help="Drop the lightcurve tables.")
@click.option("--filesystem", "reset_fs", is_flag=True,
              help="Move filed inputs back to ingest/ and delete the products.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reset_command(config_path: Path, reset_db: bool, reset_fs: bool, yes: bool) -> None:
    """Undo ingests: only inside the configured roots, after confirmation."""
    from .timetag.config import load_ingest_config
    from .timetag.ingest import reset_database, reset_filesystem

    if not (reset_db or reset_fs):
        raise click.UsageError("say what to reset: --database and/or --filesystem")
    config = load_ingest_config(config_path)
    what = []
    if reset_db:
        what.append(f"drop tables metadata, outputs, bad_data, stats of {config.database}")
    if reset_fs:
        what.append(f"move files from {config.filesystem} and {config.bad_data} back to "
                    f"{config.ingest}, and delete everything in {config.outputs}")
    if not yes and not click.confirm("This will " + "; and ".join(what) + ". Continue?"):
        click.echo("nothing changed")
        sys.exit(1)
    if reset_db:
        dropped = reset_database(config)
        click.echo(f"dropped {', '.join(dropped) or 'nothing (no tables)'}")
    if reset_fs:
        counts = reset_filesystem(config)
        click.echo(f"returned {counts['returned']} file(s) to ingest, "
                   f"deleted {counts['deleted']} product file(s)")
