"""POST /notify: WeChat's payment-result notify, read with a 64 KiB limit and answered in XML."""

import logging

from tornpay.handlers.xmlbody import StreamedXMLHandler
from tornpay.orders.notify import process_pay_notify

logger = logging.getLogger(__name__)


class PayNotifyHandler(StreamedXMLHandler):
    """Receive a payment notify; the reply never waits on plugins."""

    def post(self):
        result = process_pay_notify(self.ctx, self.body, self.request.remote_ip or "")
        self.notify_outcome = result.outcome  # accepted vs duplicate, for /metrics
        self.reply(*result)


default_handlers = [
    (r"/notify", PayNotifyHandler, "tornpay-notify"),
]
