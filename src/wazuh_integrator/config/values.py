"""What the readers of integrator.toml share about a bad value."""

from __future__ import annotations

__all__ = ["Invalid"]


class Invalid(ValueError):
    """A value that does not fit its key; the message is shown as is."""
