"""Alert floods: richer filters, throttles and digests, one stage per block
between route and deliver (see docs/floods.md)."""

from wazuh_integrator.floods.marks import Mark
from wazuh_integrator.floods.stage import DigestSubmit, FloodCounters, FloodStore, Shaped, Shaper

__all__ = ["DigestSubmit", "FloodCounters", "FloodStore", "Mark", "Shaped", "Shaper"]
