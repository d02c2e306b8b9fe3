"""POST {prefix}/refund-notify: the streamed body to the core's refund pipeline, answer back."""

from tornpay.handlers.xmlbody import StreamedXMLHandler
from tornpay.orders.notify import is_v3_body
from tornpay.orders.refund_notify import handle_refund_notify


class RefundNotifyHandler(StreamedXMLHandler):
    """WeChat's refund-result notify; the reply never waits on plugins."""

    notify_kind = "refund"

    async def post(self):
        self.v3 = is_v3_body(self.body)
        self.reply(*await handle_refund_notify(self.ctx, self.body, self.request.remote_ip or "",
                                               self.request.headers))


default_handlers = [(r"/refund-notify", RefundNotifyHandler, "refund-notify")]
