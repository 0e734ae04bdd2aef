"""Campaign state in the database: one row per chunk, one per exposure, one per product.

A chunk (detector × stage × month/anneal period) goes ``pending → running →
done | failed``; ``inactive`` marks a chunk wholly inside a detector's inactive
window.  A chunk's exposures, products and ``done`` status are written in one
transaction, so a kill at any moment leaves either the old state or the new one,
never half rows.  ``running`` rows left by a killed run are taken as pending by the
next run (the store lock guarantees no other run owns them).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from ..db import metadata

__all__ = ["campaigns", "chunks", "exposures", "products", "ChunkRow", "ExposureOutcome",
           "CampaignState",
           "PENDING", "RUNNING", "DONE", "FAILED", "INACTIVE"]

PENDING, RUNNING, DONE, FAILED, INACTIVE = "pending", "running", "done", "failed", "inactive"

campaigns = sa.Table(
    "campaigns", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

chunks = sa.Table(
    "campaign_chunks", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("detector", sa.String(64), nullable=False),
    sa.Column("stage", sa.String(64), nullable=False),
    sa.Column("chunk", sa.String(64), nullable=False),
    sa.Column("start_mjd", sa.Float(precision=53), nullable=False),
    sa.Column("end_mjd", sa.Float(precision=53), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, default=PENDING),
    sa.Column("error", sa.Text),
    sa.Column("problems", sa.Text),  # JSON list of non-fatal problems of a done chunk
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("n_processed", sa.Integer, nullable=False, default=0),
    sa.Column("n_rejected", sa.Integer, nullable=False, default=0),
    sa.Column("n_products", sa.Integer, nullable=False, default=0),
    sa.Column("started_at", sa.DateTime),
    sa.Column("finished_at", sa.DateTime),
    sa.UniqueConstraint("campaign_id", "detector", "stage", "chunk", name="uq_chunk"),
)

exposures = sa.Table(
    "campaign_exposures", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("chunk_id", sa.Integer, sa.ForeignKey("campaign_chunks.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("rootname", sa.String(64), nullable=False),
    sa.Column("path", sa.Text),
    sa.Column("status", sa.String(16), nullable=False),  # processed | rejected
    sa.Column("reason", sa.Text),
    sa.UniqueConstraint("chunk_id", "rootname", name="uq_chunk_exposure"),
)

products = sa.Table(
    "campaign_products", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("chunk_id", sa.Integer, sa.ForeignKey("campaign_chunks.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.UniqueConstraint("chunk_id", "path", name="uq_chunk_product"),
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class ChunkRow:
    """One chunk's state as read from the database."""

    id: int
    detector: str
    stage: str
    chunk: str
    start_mjd: float
    end_mjd: float
    status: str
    error: str | None
    problems: tuple[str, ...]
    attempts: int
    n_processed: int
    n_rejected: int
    n_products: int

    @property
    def unit(self) -> tuple[str, str, str]:
        return (self.detector, self.stage, self.chunk)


@dataclass(frozen=True)
class ExposureOutcome:
    """What happened to one exposure of a chunk."""

    rootname: str
    path: str | None
    status: str  # "processed" | "rejected"
    reason: str | None = None


class CampaignState:
    """Reads and writes one campaign's rows.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        From :func:`hstcal_core.db.connect`.
    name, fingerprint : str
        The campaign's name and :meth:`CampaignConfig.fingerprint`.
    """

    def __init__(self, engine: sa.Engine, name: str, fingerprint: str):
        self.engine = engine
        self.name = name
        with engine.begin() as conn:
            row = conn.execute(sa.select(campaigns).where(campaigns.c.name == name)).first()
            if row is None:
                conn.execute(campaigns.insert().values(name=name, fingerprint=fingerprint,
                                                       created_at=_now()))
                row = conn.execute(sa.select(campaigns).where(campaigns.c.name == name)).one()
        self.id = row.id
        self.previous_fingerprint = row.fingerprint
        self.fingerprint = fingerprint

    def accept_fingerprint(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(campaigns.update().where(campaigns.c.id == self.id)
                         .values(fingerprint=self.fingerprint))

    # ------------------------------------------------------------------ chunks
    def ensure_chunks(self, units: Iterable[tuple[str, str, str, float, float, bool]]) -> None:
        """Insert missing chunk rows: ``(detector, stage, chunk, start, end, inactive)``."""
        with self.engine.begin() as conn:
            known = {(r.detector, r.stage, r.chunk) for r in conn.execute(
                sa.select(chunks.c.detector, chunks.c.stage, chunks.c.chunk)
                .where(chunks.c.campaign_id == self.id))}
            rows = [dict(campaign_id=self.id, detector=d, stage=s, chunk=c, start_mjd=a,
                         end_mjd=b, status=INACTIVE if inactive else PENDING, attempts=0,
                         n_processed=0, n_rejected=0, n_products=0)
                    for d, s, c, a, b, inactive in units if (d, s, c) not in known]
            if rows:
                conn.execute(chunks.insert(), rows)

    def chunks(self) -> list[ChunkRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(chunks).where(chunks.c.campaign_id == self.id)
                                .order_by(chunks.c.start_mjd, chunks.c.detector,
                                          chunks.c.stage)).all()
        return [ChunkRow(r.id, r.detector, r.stage, r.chunk, r.start_mjd, r.end_mjd, r.status,
                         r.error, tuple(json.loads(r.problems or "[]")), r.attempts,
                         r.n_processed, r.n_rejected, r.n_products) for r in rows]

    def mark_running(self, chunk_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(chunks.update().where(chunks.c.id == chunk_id).values(
                status=RUNNING, error=None, started_at=_now(), finished_at=None,
                attempts=chunks.c.attempts + 1))

    def mark_failed(self, chunk_id: int, error: str) -> None:
        """Record a failed chunk (its exposures and products rows are dropped)."""
        with self.engine.begin() as conn:
            conn.execute(exposures.delete().where(exposures.c.chunk_id == chunk_id))
            conn.execute(products.delete().where(products.c.chunk_id == chunk_id))
            conn.execute(chunks.update().where(chunks.c.id == chunk_id).values(
                status=FAILED, error=error, finished_at=_now(), n_processed=0, n_rejected=0,
                n_products=0))

    def mark_done(self, chunk_id: int, outcomes: Sequence[ExposureOutcome],
                  product_paths: Sequence[str], problems: Sequence[str] = ()) -> None:
        """Store a chunk's exposures, products and ``done`` status in one transaction."""
        by_root: dict[str, ExposureOutcome] = {}
        for o in outcomes:  # a rejection outranks a success for the same rootname
            if o.rootname not in by_root or o.status == "rejected":
                by_root[o.rootname] = o
        with self.engine.begin() as conn:
            conn.execute(exposures.delete().where(exposures.c.chunk_id == chunk_id))
            conn.execute(products.delete().where(products.c.chunk_id == chunk_id))
            if by_root:
                conn.execute(exposures.insert(), [
                    dict(chunk_id=chunk_id, rootname=o.rootname, path=o.path, status=o.status,
                         reason=o.reason) for o in by_root.values()])
            if product_paths:
                conn.execute(products.insert(), [dict(chunk_id=chunk_id, path=p)
                                                  for p in sorted(set(product_paths))])
            n_rej = sum(o.status == "rejected" for o in by_root.values())
            conn.execute(chunks.update().where(chunks.c.id == chunk_id).values(
                status=DONE, error=None, problems=json.dumps(list(problems)) if problems else None,
                finished_at=_now(), n_processed=len(by_root) - n_rej, n_rejected=n_rej,
                n_products=len(set(product_paths))))

    def exposures(self, chunk_id: int | None = None) -> list[dict]:
        q = (sa.select(chunks.c.detector, chunks.c.stage, chunks.c.chunk, exposures.c.rootname,
                       exposures.c.path, exposures.c.status, exposures.c.reason)
             .join(chunks, chunks.c.id == exposures.c.chunk_id)
             .where(chunks.c.campaign_id == self.id))
        if chunk_id is not None:
            q = q.where(exposures.c.chunk_id == chunk_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q.order_by(chunks.c.start_mjd,
                                                                      exposures.c.rootname))]

    def products(self) -> list[str]:
        q = (sa.select(products.c.path).join(chunks, chunks.c.id == products.c.chunk_id)
             .where(chunks.c.campaign_id == self.id).order_by(products.c.path))
        with self.engine.connect() as conn:
            return [r.path for r in conn.execute(q)]
