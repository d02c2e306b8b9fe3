"""Process entry: ``python server.py [--settings FILE]`` (the same as ``tornpay serve``)."""

import sys

from tornpay.app import main, make_app  # noqa: F401  (make_app re-exported for tests/tools)

if __name__ == "__main__":
    sys.exit(main())
