"""GET /: the demo shop (when ``server.shop_page`` is on): the catalog with links to checkout."""

from urllib.parse import quote, urlsplit

from tornpay.handlers.base import BaseHandler
from tornpay.i18n import fen_to_yuan


class ShopHandler(BaseHandler):
    """List the bundled catalog's products, each with a "Pay with WeChat" link."""

    def get(self):
        if not self.ctx.settings.server.shop_page:
            self.send_error(404)
            return
        public = urlsplit(self.ctx.settings.server.public_url)
        if self.ctx.simulator is not None and self.request.host != public.netloc:
            # Demo only: cookies and the registered pay directory belong to the
            # public_url host, so http://localhost:8888/ would fail half-way.
            # (Not behind nginx, where a proxied Host could differ for good reasons.)
            self.redirect(self.ctx.settings.server.public_url.rstrip("/") + "/")
            return
        products = []
        for product_id, item in sorted(self.ctx.settings.catalog.products.items()):
            fee = int(item.get("total_fee", 0))
            products.append({
                "id": product_id,
                "body": item.get("body", product_id),
                "yuan": fen_to_yuan(fee),
                "href": f"{self.ctx.prefix}/checkout/{quote(str(product_id), safe='')}",
            })
        self.render("shop.html", products=products)


default_handlers = []
root_handlers = [(r"/", ShopHandler, "tornpay-shop")]
