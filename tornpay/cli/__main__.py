"""``python -m tornpay.cli VERB ...``: the same as the ``tornpay`` console script."""

import sys

from tornpay.cli import main

sys.exit(main())
