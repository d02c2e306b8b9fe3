"""Known-answer vectors copied from wechatpy-v2-reference.md (§3.3, §5.4, §12.4, Appendix B)."""

import pathlib
import re
from xml.etree import ElementTree

# The test credentials of the reference (WeChat's own signing example; not real).
APPID = "wxd930ea5d5a258f4f"
MCH_ID = "10000100"
KEY = "192006250b4c09247ec02edce69f6a2d"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
# The WeChat JSAPI pages' own key (B24-B26).
JSAPI_PAGE_KEY = "qazwsxedcrfvtgbyhnujmikolp111111"

# §3.3: stringSignTemp of B1.
B1_SIGNING_STRING = (
    "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100"
    "&nonce_str=ibuaiVcKdpRxkhJA&key=192006250b4c09247ec02edce69f6a2d"
)


MESSAGES_FILE = pathlib.Path(__file__).with_name("vectors_v2.xml")


def _load_messages():
    """Appendix B's XML messages by id ("B3" -> fields in the reference's order), read with
    the standard library's parser so that tornpay's own codec is not its own oracle."""
    root = ElementTree.parse(MESSAGES_FILE).getroot()
    return {xml.get("id"): {field.tag: field.text or "" for field in xml} for xml in root}


def message_xml(name: str) -> bytes:
    """The sample ``name`` byte for byte as the reference prints it (as WeChat would send it)."""
    text = MESSAGES_FILE.read_text(encoding="utf-8")
    body = re.search(rf'<xml id="{name}">(.*?)</xml>', text, re.S).group(1)
    return f"<xml>{body}</xml>".encode()


# B1, B3-B6, B9-B23: the reference's XML samples, as received (sign included).
MESSAGES = _load_messages()
(B1, B3, B4, B5, B6, B9, B10, B11, B12, B13, B14, B15, B16, B17, B18, B19, B20, B21, B22,
 B23) = (MESSAGES[f"B{n}"] for n in (1, 3, 4, 5, 6, *range(9, 24)))


def _jsapi_params(app_id, timestamp, nonce, prepay_id, sign_type="MD5"):
    """The five fields a JSAPI page signs for WeixinJSBridge (§5.4), as the page sends them."""
    return {"appId": app_id, "timeStamp": timestamp, "nonceStr": nonce,
            "package": f"prepay_id={prepay_id}", "signType": sign_type}


# B7/B8: JSAPI paySign for the §4.5 order (§5.4 vector 3); signType differs per algorithm.
B7 = _jsapi_params("wxd930ea5d5a258f4f", "1717216245", "e61463f8efa94090b1f366cccfbbb444",
                   "wx01123045912345a1b2c3d4e5f60718290000")
B8 = dict(B7, signType="HMAC-SHA256")
# B24/B25: WeChat's current JSAPI page example (§5.4 vector 1), key JSAPI_PAGE_KEY.
B24 = _jsapi_params("wx619a931576afe069", "1774495197", "RIPb5Upk3ku7knU6",
                    "wx2611334392677180ea59742b3744840000")
B25 = dict(B24, signType="HMAC-SHA256")
# B26: WeChat's service-provider JSAPI page example (§5.4 vector 2), key JSAPI_PAGE_KEY.
B26 = _jsapi_params("wxd678efh567hg6787", "1490840662", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
                    "wx2017033010242291fcfe0db70013231072")

# Appendix B: (id, message, key, algorithm, expected sign). An XML message's expected sign is
# its own "sign" field, as the reference prints it in the sample and again in Appendix B's
# table (make_sign ignores the field); B4 and B22 are HMAC-SHA256, the other samples MD5.
SIGN_VECTORS = [(name, message, KEY, "HMAC-SHA256" if name in ("B4", "B22") else "MD5",
                 message["sign"]) for name, message in MESSAGES.items()] + [
    ("B2", B1, KEY, "HMAC-SHA256", "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"),  # noqa: E501
    ("B7", B7, KEY, "MD5", "C84B37DCD7DF0CD209CB3C94F3C2F5DF"),
    ("B8", B8, KEY, "HMAC-SHA256", "6BAB5E7F14B8805753FF10426C7D2D478ED5DFA1E652E1B0061C0B144C9FC9AC"),  # noqa: E501
    ("B24", B24, JSAPI_PAGE_KEY, "MD5", "1F2E9533D7D483FBCDBD0B9BCA76F97D"),
    ("B25", B25, JSAPI_PAGE_KEY, "HMAC-SHA256", "4A04CF5B979A4920409A9DEF2322C33C96DE8E9A96830E648719C60EF991700E"),  # noqa: E501
    ("B26", B26, JSAPI_PAGE_KEY, "MD5", "22D9B4E54AB1950F51E0649E8810ACD6"),
]

# §12.4 (B27, B28): the refund-notification round trip with KEY.
REFUND_AES_KEY = "d96eb16afdd491fa1e705096edbc2205"
REFUND_PLAIN_SHA256 = "4e49a5cc43faf426d32babe6d821f2765ca465a1494047050fe8195e75d47327"
REFUND_PLAIN_FIELDS = {
    "out_refund_no": "R20240602000001",
    "out_trade_no": "20240601123045000123",
    "refund_account": "REFUND_SOURCE_UNSETTLED_FUNDS",
    "refund_fee": "1",
    "refund_id": "50300008812024060201234567890",
    "refund_recv_accout": "支付用户零钱",
    "refund_request_source": "API",
    "refund_status": "SUCCESS",
    "settlement_refund_fee": "1",
    "settlement_total_fee": "1",
    "success_time": "2024-06-02 10:15:32",
    "total_fee": "1",
    "transaction_id": "4200002315202406013425869417",
}
REQ_INFO_12_4 = (
    "4gS8kbcHysCW7bHqyEU0M9umdFVGKPOUBs+y0jA3BljAcdqjGw0Ml89/LlRTCrJcxyIJDKwsKMcMuxrZm5SNh4S5"
    "hTLaZEZqBm36jrcCaprygzSkETEba42QbqnSyo9dkhleBj0iUoPNZ2KF7X11Z7p5iVRHY+N4Mc+EBk8zi/lH8srm"
    "uKPuKev5bad+cFddSqaKvAUkctjavfjt0YguICHtq+TaTx5wTilDBay/9d/5H9esOmltP25m1TwAnWjxQVHUDFHI"
    "EsvtzAJtDQqxwVD4gaEdQdXwW3CpZ/vnctfYktU+tV+yGN8vCyJs3b+X0fzovS9Tos0t50E7RzVcRyZxy27aMsz3"
    "Hj7ykkWTu3pVaaJbFZL9PuOZEsZAqWxlplqjv+5NpNnPQ/iZ8y3c5HgUBcaojudxhuR+qz9UZb94QNYW/35JxNrP"
    "jSbITGOxRZFj7v0hlvNu3js6FCNmaMGgqEKZ/BFgWYDs4zyDZj6V+zqjzTs90nqN10iqZmKGxoqF5gN2cYebjraU"
    "2TyXMi78EAzpVoDQapy5zPmuE5r+V00UY8T0pRqjYKzYkmcU/5iruCO64/Dpx49Ld12zYuTirl8lnUJqK/+IcT+I"
    "LU5QwoyDIeSmDaComiQqDN/wUTSsMFCAEUZdbZlunKX3miNcWERc3npClOM3/nf1izrIhqFgroBjD48lDL/GToan"
    "Ud41FBCKxiaXJJK4sDqhwYlY2oxPZka+PhwJmJGQVz/wiKl3OLqGjgzPJlBA2Q+VOIkImuAVw0zoQ5uW/qg2x5/S"
    "dhVZyzGIwVnWsye8q8u+dPy76XNkj9k6bH7PNlPvCilC0kckUnhKuTVKNxHzhXr/lyw/d11qYRGuxvTAr8doEz3D"
    "KwGQvUY0dXd4Cm5NQZqw30oU4gcNFhMdNT6C5ilv1mamFqkQlnZ7Ab45IbSjz/Hz5gI627ZR1oWUoOZSNzhk/Q3/"
    "Ws4q5g1W1VJbHwOP7kV8NUo6RW28CF0onkd4RKkAD4JIncnH+XZQ20ikKI91OprLcFWLIJOJBU35utIQ/Rez2LyE"
    "XjEUVKonAT8="
)
