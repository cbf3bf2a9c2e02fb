"""Closed-loop campaigns across linked stations (`tandem.campaign`).

The campaign layer sits above every part and the twin: it reads a campaign file
(`config`: the composition space, each station's deck, scan options and costs, the
agent, the stop criteria, the twin's ground truth), checks it before anything
starts, runs the loop, and writes the end-of-campaign report (`report`: phase maps
beside the truth, accuracy against samples and beamtime, station timelines,
measured curves, `report.json` and `phase_map.csv`) with its metrics (`metrics`).
"""

from tandem.campaign.config import Campaign, CampaignConfigError, Problem, load_campaign, load_campaign_data

__all__ = ["Campaign", "CampaignConfigError", "Problem", "load_campaign", "load_campaign_data"]
