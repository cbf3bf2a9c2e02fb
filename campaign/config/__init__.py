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

- `problems`: `CampaignConfigError`, every problem of a campaign file with its place (a
  `Problem` of the core's `tandem.file_problems`, which instrument profiles use too);
- `yaml_marks`: the core's YAML with line marks (`tandem.yaml_marks`), raising the campaign's error;
- `schema`: the pydantic models of the file as written, with their ranges (their errors are put
  in words by the core's `tandem.schema_problems`);
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

from tandem.file_problems import Problem

from .campaign import Campaign, CampaignStation
from .load import load_campaign, load_campaign_data
from .problems import CampaignConfigError
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
