"""tornpay: a non-blocking WeChat Pay (JSAPI, API v2) server for Tornado."""

__version__ = "0.1.0"

__all__ = ["Embedded", "routes", "__version__"]


def __getattr__(name):
    # Lazy (PEP 562) so `import tornpay` stays light: the embedding API pulls
    # in Tornado handlers, peewee and pluggy only when an estate asks for it.
    if name in ("routes", "Embedded"):
        from tornpay import embed

        return getattr(embed, name)
    raise AttributeError(f"module 'tornpay' has no attribute {name!r}")
