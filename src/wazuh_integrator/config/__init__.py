"""Configuration: ossec.conf's <integration> blocks and our integrator.toml."""
