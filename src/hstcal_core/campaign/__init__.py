"""Campaigns: stages over date chunks of an archive, resumable, on local processes or Dask.

Names are imported lazily, so a worker process importing :mod:`.executors` does not
pay for the driver's modules (SQLAlchemy, the archive backends).
"""

from __future__ import annotations

import importlib

__all__ = ["Campaign", "CampaignReport", "CampaignConfig", "ChunkRow", "campaign_config",
           "load_campaign_config"]

_WHERE = {"Campaign": "runner", "CampaignReport": "runner", "CampaignConfig": "config",
          "campaign_config": "config", "load_campaign_config": "config", "ChunkRow": "state"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
