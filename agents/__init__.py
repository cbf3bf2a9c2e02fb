"""Decision-making (`tandem.agents`).

Agents built on BoTorch and GPyTorch that read analysed results, model the
phase map or an objective across composition space, and suggest the next
sample, station and scan; baselines with the same protocol; the agent daemon.
"""
