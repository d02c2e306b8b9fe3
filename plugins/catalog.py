"""Bundled plugin: answers resolve_product from ``settings.catalog.products``."""

import logging
from typing import Any, Mapping, Optional

logger = logging.getLogger(__name__)


class Catalog:
    """The products of one application's settings (kept per app, not in a module global)."""

    def __init__(self, products: Mapping[str, Mapping[str, Any]]):
        self.products = {pid: dict(p) for pid, p in products.items()}

    # async: a dict lookup needs no worker thread.
    async def resolve_product(self, product_id: str, openid: str) -> Optional[dict]:
        product = self.products.get(product_id)
        if product is None:
            return None
        answer = {"body": product["body"], "total_fee": product["total_fee"]}
        if product.get("attach"):
            answer["attach"] = str(product["attach"])
        return answer


def tornpay_configure(settings: Any) -> Catalog:
    """Build this application's catalog; the returned object is what gets registered."""
    products = getattr(getattr(settings, "catalog", None), "products", None) or {}
    logger.info("catalog: %d product(s)", len(products))
    return Catalog(products)
