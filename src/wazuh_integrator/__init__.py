"""wazuh-integrator: a fast, lossless replacement for Wazuh's Integrator daemon."""

__version__ = "0.1.0"
