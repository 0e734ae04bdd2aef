"""Campaigns: stages over date chunks of an archive, resumable, on local processes or Dask."""

from .config import CampaignConfig, campaign_config, load_campaign_config
from .runner import Campaign, CampaignReport
from .state import ChunkRow

__all__ = ["Campaign", "CampaignReport", "CampaignConfig", "ChunkRow", "campaign_config",
           "load_campaign_config"]
