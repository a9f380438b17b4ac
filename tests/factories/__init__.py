"""Small factories for tests, exposed as fixtures (a pytest plugin).

Each area keeps its factories in ``tests/factories/<area>.py``; this module
collects their fixtures. Defaults make a valid object; tests override only
what they are about.
"""

from tests.factories.accounts import *  # noqa: F403
from tests.factories.catalog import *  # noqa: F403
from tests.factories.claims import *  # noqa: F403
from tests.factories.feeds import *  # noqa: F403
from tests.factories.notifications import *  # noqa: F403
from tests.factories.reports import *  # noqa: F403
from tests.factories.reservations import *  # noqa: F403
from tests.factories.training import *  # noqa: F403
from tests.factories.vouchers import *  # noqa: F403
