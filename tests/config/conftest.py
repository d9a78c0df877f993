from __future__ import annotations

from pathlib import Path

import pytest
from tests.config.wazuh_home import WazuhHome, make_home


@pytest.fixture
def home(tmp_path: Path) -> WazuhHome:
    return make_home(tmp_path / "ossec")
