"""The simulator's small HTML dashboard: orders, refunds and every notify attempt and reply."""

import tornado.web
from tornado.escape import xhtml_escape as esc

from tornpay.i18n import HTML_LANG
from tornpay.simulator.phonepages import page_locale
from tornpay.simulator.records import dashed_time
from tornpay.simulator.state import SimulatorState

STYLE = ("body{font-family:sans-serif;margin:0}table{border-collapse:collapse;margin:8px}"
         "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px;vertical-align:top}"
         ".banner{background:#c00;color:#fff;padding:6px 10px;font-weight:bold}"
         "pre{margin:0;white-space:pre-wrap;max-width:40em}"
         # On a phone the wide tables scroll sideways inside their box, not the page.
         ".scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}"
         ".warn{color:#a40;font-weight:bold;margin:4px 0}")


def _attempts(attempts) -> str:
    rows = []
    for a in attempts:
        if a.dropped:
            rows.append("<li>dropped (fault notify_drop)</li>")
            continue
        outcome = "ok" if a.ok else (a.error or f"HTTP {a.status}")
        dup = " (duplicate)" if a.duplicate else ""
        rows.append(f"<li>#{a.n}{dup} {esc(dashed_time(a.at))} → {esc(outcome)}"
                    f"<pre>{esc(a.reply)}</pre></li>")
    return f"<ol>{''.join(rows)}</ol>" if rows else "—"


def _warning(order) -> str:
    if not order.notify_url_warning:
        return ""
    return (f"<p class='warn tornpay-sim-notify-warning'>⚠ {esc(order.notify_url)}: "
            f"{esc(order.notify_url_warning)}</p>")


class DashboardHandler(tornado.web.RequestHandler):
    """GET / : a read-only view for people; the control API is the machine interface."""

    def initialize(self, state: SimulatorState) -> None:
        self.state = state

    def get(self) -> None:
        s = self.state
        orders = "".join(
            f"<tr><td>{esc(o.out_trade_no)}</td><td>{esc(o.trade_state)} {esc(o.trade_type)}</td>"
            f"<td>{o.total_fee}</td><td>{esc(o.body)}</td><td>{esc(o.openid)}</td>"
            f"<td>{esc(o.transaction_id)}</td><td>{esc(o.notify_status)}{_warning(o)}</td>"
            f"<td>{_attempts(o.notifies)}</td></tr>"
            for o in sorted(s.orders.values(), key=lambda o: -o.created_at)
        )
        refunds = "".join(
            f"<tr><td>{esc(r.out_refund_no)}</td><td>{esc(r.out_trade_no)}</td>"
            f"<td>{r.refund_fee}</td><td>{esc(r.status)}</td><td>{esc(r.notify_status)}</td>"
            f"<td>{_attempts(r.notifies)}</td></tr>"
            for r in s.refunds.values()
        )
        locale = page_locale(self.request)
        _ = locale.translate
        clock = _("Simulator clock: %(time)s (Beijing)") % {"time": esc(dashed_time(s.now()))}
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            f"<!doctype html><html lang='{HTML_LANG[locale.code]}'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<title>tornpay SIMULATOR</title>"
            f"<style>{STYLE}</style></head><body>"
            "<div class='banner' id='tornpay-simulator-banner'>SIMULATOR — "
            f"{_('not WeChat, no real money')}</div>"
            f"<p style='margin:8px'>{clock} &middot; <a href='scan' id='tornpay-sim-scan-link'>"
            f"{_('Scan a WeChat Pay QR code')}</a></p>"
            f"<h2 style='margin:8px'>{_('Orders')}</h2><div class='scroll'><table>"
            "<tr><th>out_trade_no</th><th>state</th>"
            "<th>fen</th><th>body</th><th>openid</th><th>transaction_id</th><th>notify</th>"
            f"<th>attempts (reply)</th></tr>{orders}</table></div>"
            f"<h2 style='margin:8px'>{_('Refund records')}</h2><div class='scroll'><table>"
            "<tr><th>out_refund_no</th>"
            "<th>out_trade_no</th><th>fen</th><th>status</th><th>notify</th>"
            f"<th>attempts (reply)</th></tr>{refunds}</table></div></body></html>"
        )
