"""The bundled demo: a sample Wazuh home, sample alerts, local receivers."""
