"""v3 order endpoints: JSAPI/NATIVE/H5 prepay, query by out_trade_no or id, close (§7, §9, §10)."""

from typing import Any, Dict, Optional, Tuple
from urllib.parse import unquote

from tornpay.simulator import h5native
from tornpay.simulator.notifyurl import notify_url_refusal
from tornpay.simulator.records import Order
from tornpay.simulator.v3.api import V3ApiHandler, V3Fail, param_error
from tornpay.simulator.v3.fields import (OUT_TRADE_NO_RE, fen, only, parse_rfc3339, text,
                                         transaction)

TOP_FIELDS = ("appid", "mchid", "description", "out_trade_no", "time_expire", "attach",
              "notify_url", "goods_tag", "support_fapiao", "amount", "payer", "scene_info",
              "detail", "settle_info")
TRADE_TYPES = {"jsapi": "JSAPI", "native": "NATIVE", "h5": "MWEB"}


class PrepayHandler(V3ApiHandler):
    """``POST /v3/pay/transactions/{kind}``: the path's last part is the kind (TRADE_TYPES)."""

    SUPPORTED_METHODS = ("POST",)
    endpoint = "unifiedorder"
    kind = "jsapi"

    async def handle(self, mchid: str, kind: str = "jsapi", *args) -> Tuple[int, Optional[dict]]:
        self.kind = kind
        data = self.body_json
        only(data, TOP_FIELDS)
        appid, no = self._check(data, mchid)
        state = self.state
        merchant = state.config.merchant(mchid)
        if merchant is None or appid not in merchant.appids:
            raise V3Fail(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        order = state.order(mchid, no)
        if order is not None:
            if order.trade_state in ("SUCCESS", "REFUND"):
                raise V3Fail(400, "ORDERPAID", "订单已支付")
            if order.trade_state == "CLOSED":
                raise V3Fail(400, "ORDER_CLOSED", "订单已关闭")
            if order.request != data:  # key order is irrelevant: dicts compare by content
                raise V3Fail(400, "INVALID_REQUEST", "请求重入时，参数与首次请求时不一致")
            state.issue_prepay(order)  # identical re-entry: a fresh token
        else:
            order = self._create(mchid, data)
        if state.faults.fire("notify_before_reply", self.endpoint):
            # The user pays and WeChat notifies before this reply reaches the merchant.
            state.pay(order, notify=False)
            first = state.notifier.notify_payment(order)
            if first is not None:
                await first
        return 200, self._token(order)

    def _check(self, data: Dict[str, Any], mchid: str) -> Tuple[str, str]:
        appid = text(data, "appid", 32)
        text(data, "mchid", 32)
        text(data, "description", 127)
        no = text(data, "out_trade_no", 32)
        if not OUT_TRADE_NO_RE.fullmatch(no):
            raise param_error("out_trade_no", no, "商户订单号格式错误（6-32位字母数字_-*|）")
        url = text(data, "notify_url", 255)
        refusal = notify_url_refusal(url)
        if refusal or "?" in url:
            raise param_error("notify_url", url, refusal or "notify_url不能携带参数")
        amount = data.get("amount")
        if not isinstance(amount, dict):
            raise param_error("amount", amount, "必填字段缺失")
        only(amount, ("total", "currency"), "amount.")
        fen(amount.get("total"), "amount/total")
        if amount.get("currency", "CNY") != "CNY":
            raise param_error("amount/currency", amount.get("currency"), "Currency code is invalid")
        if "time_expire" in data and parse_rfc3339(data["time_expire"]) is None:
            raise param_error("time_expire", data["time_expire"],
                              "字符串必须是符合 RFC3339 日期时间格式")
        if self.kind == "jsapi":
            payer = data.get("payer")
            if not isinstance(payer, dict) or not isinstance(payer.get("openid"), str):
                raise V3Fail(400, "PARAM_ERROR", "JSAPI支付必须传openid")
        if self.kind == "h5":
            scene = data.get("scene_info") or {}
            if not (isinstance(scene, dict) and scene.get("payer_client_ip")
                    and isinstance(scene.get("h5_info"), dict) and scene["h5_info"].get("type")):
                raise param_error("scene_info", scene, "H5支付必须传scene_info.payer_client_ip"
                                                       "和h5_info.type")
        return appid, no

    def _create(self, mchid: str, data: Dict[str, Any]) -> Order:
        state = self.state
        expire = parse_rfc3339(data["time_expire"]) if "time_expire" in data else None
        if expire is not None:
            expire = max(expire, state.now() + 60)  # clamped to creation + 1 min (§7.4)
        order = Order(
            mch_id=mchid, appid=data["appid"], out_trade_no=data["out_trade_no"], request=data,
            sign_type="RSA", created_at=state.now(), total_fee=data["amount"]["total"],
            openid=(data.get("payer") or {}).get("openid", ""), notify_url=data["notify_url"],
            body=data["description"], attach=data.get("attach", ""),
            trade_type=TRADE_TYPES[self.kind], time_expire=expire, api="v3",
        )
        state.orders[(mchid, order.out_trade_no)] = order
        state.issue_prepay(order)
        return order

    def _token(self, order: Order) -> Dict[str, str]:
        """prepay_id, or the same code_url / checkmweb links v2 orders get (scan page, cashier)."""
        if self.kind == "jsapi":
            return {"prepay_id": order.prepay_id}
        scene = order.request.get("scene_info") or {}
        params = {"spbill_create_ip": scene.get("payer_client_ip", "")}
        out = h5native.reply_fields(self.state, order, params, self._public_base())
        return {"h5_url": out["mweb_url"]} if "mweb_url" in out else out

    def _public_base(self) -> str:
        configured = self.state.config.public_url.rstrip("/")
        if configured:
            return configured
        base = self.request.path.rsplit("/v3/pay/transactions/", 1)[0]
        return f"{self.request.protocol}://{self.request.host}{base}"


def _mchid_query(handler: V3ApiHandler, mchid: str) -> None:
    given = handler.get_query_argument("mchid", "")
    if not given:
        raise param_error("mchid", "", "必填字段缺失", location="uri_template")
    if given != mchid:
        raise V3Fail(400, "INVALID_REQUEST", "mchid不匹配")


class QueryHandler(V3ApiHandler):
    """``GET /v3/pay/transactions/{id|out-trade-no}/{ident}``: by transaction id or our number."""

    SUPPORTED_METHODS = ("GET",)
    endpoint = "orderquery"

    async def handle(self, mchid: str, by: str = "", ident: str = "",
                     *args) -> Tuple[int, Optional[dict]]:
        _mchid_query(self, mchid)
        ident = unquote(ident)
        if by == "id":
            order = self.state.order(mchid, transaction_id=ident)
        else:
            order = self.state.order(mchid, ident)
        if order is None:
            raise V3Fail(404, "ORDER_NOT_EXIST", "订单不存在")
        self.state.settle_due_refunds()
        return 200, transaction(order)


class CloseHandler(V3ApiHandler):
    SUPPORTED_METHODS = ("POST",)
    endpoint = "closeorder"

    async def handle(self, mchid: str, ident: str = "", *args) -> Tuple[int, Optional[dict]]:
        only(self.body_json, ("mchid",))
        if not self.body_json.get("mchid"):
            raise param_error("mchid", "", "必填字段缺失", location="body")
        order = self.state.order(mchid, unquote(ident))
        if order is None:
            raise V3Fail(404, "ORDER_NOT_EXIST", "订单不存在")
        if order.trade_state in ("SUCCESS", "REFUND"):
            raise V3Fail(400, "ORDERPAID", "订单已支付")
        order.trade_state = "CLOSED"  # closing a closed order succeeds again
        return 204, None
