"""GET /metrics: this app's Prometheus metrics (its own registry, never the process-global one)."""

import tornado.web


class MetricsHandler(tornado.web.RequestHandler):
    """Expose ``ctx.metrics`` in the Prometheus text format; restrict it to scrapers in nginx."""

    def initialize(self, ctx):
        self.ctx = ctx

    def get(self):
        metrics = self.ctx.metrics
        if metrics is None:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", metrics.content_type)
        self.set_header("Cache-Control", "no-store")
        self.finish(metrics.render())


default_handlers = []
root_handlers = [(r"/metrics", MetricsHandler, "metrics")]
