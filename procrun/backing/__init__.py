"""Backing-service chaos (``--chaos-backing``): the app's service URLs routed through loopback
TCP proxies that inject seeded faults, and a verdict per process type on how it copes.

``urls`` decides which values are proxied and how they are rewritten (pure); ``proxy`` forwards
and breaks connections; ``verdicts`` judges what was seen (pure); ``service`` runs it all.
"""
