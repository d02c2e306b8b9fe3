"""GET /healthz: 200 while the database answers, 503 otherwise."""

import tornado.web

from tornpay.storage.db import ping


class HealthHandler(tornado.web.RequestHandler):
    """Report whether this process can reach its database."""

    def initialize(self, ctx):
        self.ctx = ctx

    async def get(self):
        self.set_header("Cache-Control", "no-store")
        health = self.ctx.db_health
        if not health.ok:
            # Reads may still work; payments cannot be recorded: take this one out.
            self.set_status(503)
            self.write({"status": "unavailable", "reason": "database not writable",
                        "detail": health.reason})
            return
        try:
            # On a reader thread: a write lock held elsewhere does not stall this.
            alive = await self.ctx.db_read(ping, self.ctx.db)
        except Exception:  # no reader in time (DbBusy)
            alive = False
        if alive:
            self.write({"status": "ok"})
        else:
            self.set_status(503)
            self.write({"status": "unavailable", "reason": "database"})


default_handlers = []
root_handlers = [(r"/healthz", HealthHandler, "health")]
