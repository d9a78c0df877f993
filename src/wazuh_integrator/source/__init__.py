"""The alerts.json tailer: complete lines with the positions a checkpoint needs.

See docs/source.md for what it does on rotation, truncation and deletion.
"""

from wazuh_integrator.source.positions import FileId, Line, Position
from wazuh_integrator.source.tailer import CHUNK_BYTES, AlertTailer

__all__ = ["CHUNK_BYTES", "AlertTailer", "FileId", "Line", "Position"]
