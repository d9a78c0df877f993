"""Per-integration delivery: workers, rate limits, retries, parking, dead letters.

See :mod:`wazuh_integrator.delivery.deliverer` for the life of a delivery and
``docs/delivery.md`` for what an administrator sees.
"""

from wazuh_integrator.delivery.deliverer import Deliverer
from wazuh_integrator.delivery.model import Delivery

__all__ = ["Deliverer", "Delivery"]
