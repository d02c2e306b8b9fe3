"""tornpay: a non-blocking WeChat Pay (JSAPI, API v2) server for Tornado."""

__version__ = "0.1.0"
