"""GET /metrics: this app's Prometheus metrics (its own registry, never the process-global one)."""

import tornado.web


class MetricsHandler(tornado.web.RequestHandler):
    """Expose ``ctx.metrics`` in the Prometheus text format; restrict it to scrapers in nginx."""

    def initialize(self, ctx):
        self.ctx = ctx

    async def get(self):
        metrics = self.ctx.metrics
        if metrics is None:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", metrics.content_type)
        self.set_header("Cache-Control", "no-store")
        # Its database counts run on a reader thread, never on the loop.
        self.finish(await self.ctx.db_read(metrics.render))


default_handlers = []
root_handlers = [(r"/metrics", MetricsHandler, "metrics")]
