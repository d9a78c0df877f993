"""Benchmarks for wazuh-integrator; run with ``python bench/run.py``. Never run by CI."""
