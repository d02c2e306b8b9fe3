"""POST /notify: WeChat's payment-result notify, read with a 64 KiB limit and answered in XML."""

import logging

from tornpay.handlers.xmlbody import StreamedXMLHandler
from tornpay.orders.notify import handle_pay_notify, is_v3_body

logger = logging.getLogger(__name__)


class PayNotifyHandler(StreamedXMLHandler):
    """Receive a payment notify; the reply never waits on plugins."""

    async def post(self):
        self.v3 = is_v3_body(self.body)
        result = await handle_pay_notify(self.ctx, self.body, self.request.remote_ip or "",
                                          self.request.headers)
        self.notify_outcome = result.outcome  # accepted vs duplicate, for /metrics
        # A payment's INFO line (order, event) is this request's line: no access line too.
        self.logged_own_line = result.paid is not None
        self.reply(*result)


default_handlers = [
    (r"/notify", PayNotifyHandler, "tornpay-notify"),
]
