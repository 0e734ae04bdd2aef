"""The click group every ``hstcal`` command group uses: an :class:`HstcalError` becomes
one ``error: ...`` line on stderr and exit status 2, also when a subgroup
(``hstcal census``, ``hstcal lightcurve``) is invoked on its own."""

from __future__ import annotations

import sys

import click

from .errors import HstcalError

__all__ = ["HstcalGroup"]


class HstcalGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except HstcalError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
