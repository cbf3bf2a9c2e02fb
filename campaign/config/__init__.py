"""Campaign files: what a closed-loop campaign explores, with which labs, agent and budget.

A campaign file is YAML (see ``docs/how-to/campaigns.md`` and
``campaign/demo/demo.yaml``)::

    id: demo
    space:
      bounds: {SDS: [0, 0.15], PPG: [0, 0.10], NaCl: [0, 0.05]}
    stations:
      saxs: {deck: saxs_deck.yaml, scan: {exposure_s: {min: 0.1, max: 10, default: 1}}}
      sans: {deck: sans_deck.yaml, scan: {exposure_s: {min: 60, max: 1800, default: 300}}}
    agent: {kind: multi_probe, seed: 1}
    stop: {max_samples: 60}

`load_campaign` reads and checks everything a campaign needs before any server
starts: the schema (unknown keys, types, ranges), then what the schema cannot see —
that each station's stocks hold every component the bounds need, that the stocks
can make every corner of the space, that scan settings are within the instrument's
limits (of the instruments `load_campaign` is given, else the twin's), that the
ground truth imports and answers. Every problem is collected into one
`CampaignConfigError`, each line of which points at the file, line and key and
says what to change.

What belongs where:

- `problems`: `Problem` and `CampaignConfigError`, what is wrong and where;
- `yaml_marks`: the YAML read with the line and column of every key and value;
- `schema`: the pydantic models of the file as written, with their ranges;
- `schema_problems`: the schema's errors (and numbers too large to store) in words
  (these three are the core's `tandem.file_problems`, `tandem.yaml_marks` and
  `tandem.schema_problems`, which read instrument profiles too, under the campaign's names);
- `profiles`: the instrument each station names — by name, a profile file or a profile inline
  (`tandem.instrument_profile`);
- `checker`, `space_checks`, `station_checks`, `agent_checks`: what the schema
  cannot see — the components and space, each station against its instrument and
  stocks, the agent, the stop criteria and the twin's truth;
- `twin`: the one place loading a campaign chooses the digital twin (its instruments when
  `load_campaign` is given none, its components when the file names none, its truth);
  stations are checked against any instruments with `tandem.instrument.InstrumentFacts`;
- `campaign`: the loaded `Campaign` and its `CampaignStation`s;
- `load`: `load_campaign` and `load_campaign_data`, which run all of the above in order.
"""

from .campaign import Campaign, CampaignStation
from .load import load_campaign, load_campaign_data
from .problems import CampaignConfigError, Problem
from .schema import MAX_SAMPLES, MAX_SEED, AgentKind

__all__ = [
    "MAX_SAMPLES",
    "MAX_SEED",
    "AgentKind",
    "Campaign",
    "CampaignConfigError",
    "CampaignStation",
    "Problem",
    "load_campaign",
    "load_campaign_data",
]
