"""Who serves the database: processes (heartbeats, crash recovery) and their plugins (fan-out).

SPEC §6: every durable event reaches every plugin that any serving process has
loaded, whichever process made the change. Each serving process (a server or
an embedding estate; never the CLI) records itself in ``tornpay_process`` and
its plugins in ``tornpay_plugin`` at start and on every heartbeat. The outbox
writes one Delivery per plugin known there (plus the writer's own), and each
dispatcher claims only deliveries to plugins it has loaded.

A process that died holding leases is recognised as dead by a live one (on
its start and on every heartbeat): on the same machine (host, boot, pid
namespace) when its pid is gone, on another when it missed ``DEAD_AFTER_BEATS``
heartbeats. Its leases are then released at once instead of waiting out
``2 x deliveries.timeout_seconds``. A process on the same machine whose pid is
alive is never declared dead (its leases expire as before), so two live
processes never run one delivery at once.
"""

import datetime
import logging
import os
import socket
from typing import Any, Dict, List, Optional

from tornpay.orders.periodic import PeriodicWorker
from tornpay.storage.db import database_proxy as db
from tornpay.storage.executor import run_write
from tornpay.storage.models import FAILED, PENDING, Delivery, KnownPlugin, ProcessRow, utcnow

logger = logging.getLogger(__name__)

DURABLE_HOOKS = ("on_paid", "on_cancel", "on_refund")
# A process that has not beaten for this many heartbeats is dead (12 x 5 s = 1 minute):
# generous, because an IOLoop held up by a slow disk is alive and may be mid-delivery.
DEAD_AFTER_BEATS = 12
PROCESS_STARTED = utcnow()  # no earlier process with our pid registered after this


def loaded_plugins(hooks: Any) -> Optional[List[str]]:
    """Names of the plugins in ``hooks`` implementing a durable hook (None: cannot tell)."""
    names = getattr(hooks, "plugin_names", None)
    if names is None:
        return None
    out: List[str] = []
    for hook in DURABLE_HOOKS:
        out.extend(n for n in names(hook) if n not in out)
    return out


def machine_id() -> str:
    """Host, boot and pid namespace: two processes with the same value can compare pids."""
    parts = [socket.gethostname()]
    sources = (("/proc/sys/kernel/random/boot_id", _read), ("/proc/self/ns/pid", os.readlink))
    for path, read in sources:
        try:
            parts.append(read(path).strip())
        except OSError:
            parts.append("")
    return "|".join(parts)[:128]


def _read(path: str) -> str:
    with open(path, encoding="ascii") as fh:
        return fh.read()


def pid_alive(pid: int) -> bool:
    """False only when ``pid`` certainly runs no process here (gone, or a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    try:
        state = _read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


class Registry(PeriodicWorker):
    """This process's row, its plugins' rows, the heartbeat, and reaping dead processes."""

    name = "heartbeat"

    def __init__(self, hooks: Any, settings: Any, owner_id: str, on_reaped=None):
        self.hooks = hooks
        self.cfg = settings.deliveries
        self.owner_id = owner_id
        self.machine = machine_id()
        self.on_reaped = on_reaped  # e.g. the dispatcher's kick
        self.dbx = None  # the app's DbExecutor (set by Context): beats off the loop

    @property
    def dead_after(self) -> datetime.timedelta:
        return datetime.timedelta(seconds=self.cfg.heartbeat_seconds * DEAD_AFTER_BEATS)

    def start(self) -> None:
        """Register now (before the dispatcher's first claim), then beat on the IOLoop."""
        self.beat()
        super().start()

    def interval(self) -> float:
        return self.cfg.heartbeat_seconds

    async def run_once(self) -> None:
        released = await run_write(self.dbx, self._beat_in_transaction)
        if released and self.on_reaped is not None:
            self.on_reaped()

    async def stop(self) -> None:
        """Stop beating and drop our process row (plugin rows stay: others may load them)."""
        await super().stop()
        try:
            await run_write(self.dbx, ProcessRow.delete().where(
                ProcessRow.owner_id == self.owner_id).execute)
        except Exception:  # the database may be gone; the row then looks dead later
            logger.warning("could not remove process row %s", self.owner_id, exc_info=True)

    def beat(self) -> None:
        """Record that we are alive with our plugins; release dead processes; forget old plugins."""
        released = self._beat_in_transaction()
        if released and self.on_reaped is not None:
            self.on_reaped()

    def _beat_in_transaction(self) -> int:
        now = utcnow()
        with db.atomic():
            (ProcessRow.insert(owner_id=self.owner_id, machine=self.machine, pid=os.getpid(),
                               started_at=now, heartbeat_at=now)
             .on_conflict(conflict_target=[ProcessRow.owner_id],
                          update={ProcessRow.heartbeat_at: now}).execute())
            for name, hooks in self._plugin_hooks().items():
                values = {getattr(KnownPlugin, h): v for h, v in hooks.items()}
                values.update({KnownPlugin.seen_by: self.owner_id, KnownPlugin.seen_at: now})
                (KnownPlugin.insert({KnownPlugin.name: name, **values})
                 .on_conflict(conflict_target=[KnownPlugin.name], update=values).execute())
        released = self.reap(now)
        self.expire_plugins(now)
        return released

    def _plugin_hooks(self) -> Dict[str, Dict[str, bool]]:
        out: Dict[str, Dict[str, bool]] = {}
        for hook in DURABLE_HOOKS:
            for name in self.hooks.plugin_names(hook):
                out.setdefault(name, {h: False for h in DURABLE_HOOKS})[hook] = True
        return out

    def is_dead(self, row: ProcessRow, now: datetime.datetime) -> bool:
        """Certainly dead: a live process, even one whose IOLoop stalls, is never taken over."""
        if row.owner_id == self.owner_id:
            return False
        if row.machine == self.machine:
            if row.pid == os.getpid():
                # Another app in this process, or an earlier process that had our pid
                # (it registered before we started, and two never share a pid).
                return row.started_at < PROCESS_STARTED
            # Same machine: the pid answers. A live pid whose heartbeat stopped may be
            # a stalled process mid-delivery, so only its lease expiring frees its rows.
            return not pid_alive(row.pid)
        return row.heartbeat_at < now - self.dead_after

    def reap(self, now: datetime.datetime) -> int:
        """Release the delivery leases of dead processes and drop their rows; count releases."""
        released = 0
        for row in list(ProcessRow.select()):
            if not self.is_dead(row, now):
                continue
            with db.atomic():
                n = (Delivery.update(lease_owner=None, lease_until=None)
                     .where((Delivery.lease_owner == row.owner_id) & (Delivery.state == PENDING))
                     .execute())
                ProcessRow.delete().where(ProcessRow.owner_id == row.owner_id).execute()
            if n:
                logger.warning("process %s (pid %d) is gone; its %d in-flight deliveries resume "
                               "now", row.owner_id, row.pid, n)
            released += n
        return released

    def expire_plugins(self, now: datetime.datetime) -> None:
        """Forget plugins no process has loaded for a long time; park their pending deliveries."""
        cutoff = now - datetime.timedelta(hours=self.cfg.forget_plugin_after_hours)
        stale = [p.name for p in KnownPlugin.select(KnownPlugin.name)
                 .where(KnownPlugin.seen_at < cutoff)]
        for name in stale:
            with db.atomic():
                if not KnownPlugin.delete().where((KnownPlugin.name == name)
                                                  & (KnownPlugin.seen_at < cutoff)).execute():
                    continue  # loaded again meanwhile
                why = (f"plugin {name} not loaded by any process for "
                       f"{self.cfg.forget_plugin_after_hours:g} hours")
                parked = (Delivery.update(state=FAILED, lease_owner=None, lease_until=None,
                                          last_error=why)
                          .where((Delivery.plugin == name) & (Delivery.state == PENDING))
                          .execute())
            logger.warning("plugin %s: no process has loaded it for %g hours; forgotten, %d "
                           "pending deliveries parked (tornpay deliveries list --state failed)",
                           name, self.cfg.forget_plugin_after_hours, parked)
