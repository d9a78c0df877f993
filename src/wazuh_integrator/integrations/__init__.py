"""Integrations, one module each, found by name through :mod:`.registry`."""
