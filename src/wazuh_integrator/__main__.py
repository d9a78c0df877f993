"""``python -m wazuh_integrator``: the same as the ``wazuh-integrator`` command."""

import sys

from wazuh_integrator.cli import main

sys.exit(main())
