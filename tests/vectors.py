"""Known-answer vectors copied from wechatpy-v2-reference.md (§3.3, §5.4, §12.4, Appendix B)."""

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

# B1: official example (§3.3), as received (sign included)
B1 = {
    "appid": "wxd930ea5d5a258f4f",
    "mch_id": "10000100",
    "device_info": "1000",
    "body": "test",
    "nonce_str": "ibuaiVcKdpRxkhJA",
    "sign": "9A0A8659F005D6984697E2CA0A9CF3B7",
}

# B3: unifiedorder request (§4.5), as received (sign included)
B3 = {
    "appid": "wxd930ea5d5a258f4f",
    "mch_id": "10000100",
    "device_info": "WEB",
    "nonce_str": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
    "body": "示例商城-会员充值",
    "attach": "shop=sz01",
    "out_trade_no": "20240601123045000123",
    "fee_type": "CNY",
    "total_fee": "1",
    "spbill_create_ip": "123.12.12.123",
    "time_start": "20240601123045",
    "time_expire": "20240601143045",
    "notify_url": "https://merchant.example.com/wxpay/notify",
    "trade_type": "JSAPI",
    "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
    "sign": "209867E353F8E8E8D22CF881F9AE3F2B",
}

# B4: unifiedorder request with sign_type (§4.5), as received (sign included)
B4 = {
    "appid": "wxd930ea5d5a258f4f",
    "mch_id": "10000100",
    "device_info": "WEB",
    "nonce_str": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
    "body": "示例商城-会员充值",
    "attach": "shop=sz01",
    "out_trade_no": "20240601123045000123",
    "fee_type": "CNY",
    "total_fee": "1",
    "spbill_create_ip": "123.12.12.123",
    "time_start": "20240601123045",
    "time_expire": "20240601143045",
    "notify_url": "https://merchant.example.com/wxpay/notify",
    "trade_type": "JSAPI",
    "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
    "sign_type": "HMAC-SHA256",
    "sign": "25F3BFA4FB12EAE8288A5A1FC7755F3343462F162E9499BB75FD4E75E1BB4C59",
}

# B5: unifiedorder success reply (§4.5), as received (sign included)
B5 = {
    "return_code": "SUCCESS",
    "return_msg": "OK",
    "appid": "wxd930ea5d5a258f4f",
    "mch_id": "10000100",
    "device_info": "WEB",
    "nonce_str": "IITRi8Iabbblz1Jc",
    "result_code": "SUCCESS",
    "prepay_id": "wx01123045912345a1b2c3d4e5f60718290000",
    "trade_type": "JSAPI",
    "sign": "9594894636778AA4FC9E759AD1F49CED",
}

# B6: unifiedorder ORDERPAID reply (§4.5), as received (sign included)
B6 = {
    "return_code": "SUCCESS",
    "return_msg": "OK",
    "appid": "wxd930ea5d5a258f4f",
    "mch_id": "10000100",
    "nonce_str": "Ror2WQTEfAl3Y40q",
    "result_code": "FAIL",
    "err_code": "ORDERPAID",
    "err_code_des": "该订单已支付",
    "sign": "2709224F3CE4B81C66EA970C33398DAF",
}

# B9: orderquery request (§6.5), as received (sign included)
B9 = {
    "appid": "wxd930ea5d5a258f4f",
    "mch_id": "10000100",
    "out_trade_no": "20240601123045000123",
    "nonce_str": "ec2316275641faa3aacf3cc599e8730f",
    "sign": "C2A59E78C25CB009BD0BE51AF18C5707",
}

# B10: orderquery reply, SUCCESS (§6.5), as received (sign included)
B10 = {
    "return_code": "SUCCESS",
    "return_msg": "OK",
    "appid": "wxd930ea5d5a258f4f",
    "mch_id": "10000100",
    "device_info": "WEB",
    "nonce_str": "C5h9TIF57KyXXr3M",
    "result_code": "SUCCESS",
    "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
    "is_subscribe": "N",
    "trade_type": "JSAPI",
    "trade_state": "SUCCESS",
    "bank_type": "OTHERS",
    "total_fee": "1",
    "fee_type": "CNY",
    "cash_fee": "1",
    "cash_fee_type": "CNY",
    "transaction_id": "4200002315202406013425869417",
    "out_trade_no": "20240601123045000123",
    "attach": "shop=sz01",
    "time_end": "20240601123110",
    "trade_state_desc": "支付成功",
    "sign": "CD82D4A006F8E013EF85CEF0BBE39BD8",
}

# B11: orderquery reply, NOTPAY (§6.5), as received (sign included)
B11 = {
    "return_code": "SUCCESS",
    "return_msg": "OK",
    "appid": "wxd930ea5d5a258f4f",
    "mch_id": "10000100",
    "device_info": "WEB",
    "nonce_str": "yQETQFFag5TTMB8d",
    "result_code": "SUCCESS",
    "total_fee": "1",
    "out_trade_no": "20240601123045000124",
    "trade_state": "NOTPAY",
    "trade_state_desc": "订单未支付",
    "sign": "953AE78F5673B0B5147586F2EC18B9B0",
}

# B12: orderquery reply, ORDERNOTEXIST (§6.5), as received (sign included)
B12 = {
    "return_code": "SUCCESS",
    "return_msg": "OK",
    "appid": "wxd930ea5d5a258f4f",
    "mch_id": "10000100",
    "nonce_str": "TN55wO9Pba5yENl8",
    "result_code": "FAIL",
    "err_code": "ORDERNOTEXIST",
    "err_code_des": "order not exist",
    "sign": "5F13089726CE66FC3C73D10E307C5FFA",
}

# B13: closeorder request (§7), as received (sign included)
B13 = {
    "appid": "wxd930ea5d5a258f4f",
    "mch_id": "10000100",
    "out_trade_no": "20240601123045000124",
    "nonce_str": "4ca93f17ddf3443ceabf72f26d64fe0e",
    "sign": "BFB31A487FC00BA2D35259F7D788ED62",
}

# B14: closeorder reply (§7), as received (sign included)
B14 = {
    "return_code": "SUCCESS",
    "return_msg": "OK",
    "appid": "wxd930ea5d5a258f4f",
    "mch_id": "10000100",
    "nonce_str": "BFK89FC6rxKCOjLX",
    "result_code": "SUCCESS",
    "result_msg": "OK",
    "sign": "1998AEAE7E4FC50B3EAFD25B31C59553",
}

# B15: refund request (§8.4), as received (sign included)
B15 = {
    "appid": "wxd930ea5d5a258f4f",
    "mch_id": "10000100",
    "nonce_str": "6cefdb308e1e2e8aabd48cf79e546a02",
    "transaction_id": "4200002315202406013425869417",
    "out_refund_no": "R20240602000001",
    "total_fee": "1",
    "refund_fee": "1",
    "refund_desc": "用户取消订单",
    "notify_url": "https://merchant.example.com/wxpay/refund-notify",
    "sign": "B1D261E43643C7889185B5B8A0A42085",
}

# B16: refund reply (§8.4), as received (sign included);
# its empty refund_channel is skipped when signing, its 0 values are not
B16 = {
    "return_code": "SUCCESS",
    "return_msg": "OK",
    "appid": "wxd930ea5d5a258f4f",
    "mch_id": "10000100",
    "nonce_str": "NfsMFbUFpdbEhPXP",
    "result_code": "SUCCESS",
    "transaction_id": "4200002315202406013425869417",
    "out_trade_no": "20240601123045000123",
    "out_refund_no": "R20240602000001",
    "refund_id": "50300008812024060201234567890",
    "refund_channel": "",
    "refund_fee": "1",
    "total_fee": "1",
    "cash_fee": "1",
    "cash_refund_fee": "1",
    "coupon_refund_fee": "0",
    "coupon_refund_count": "0",
    "sign": "F409E7D0442C7BFD085522699715478E",
}

# B17: refundquery request (§9.4), as received (sign included)
B17 = {
    "appid": "wxd930ea5d5a258f4f",
    "mch_id": "10000100",
    "nonce_str": "0b9f35f484df17a732e537c37708d1d0",
    "out_refund_no": "R20240602000001",
    "sign": "5E15D695B192E55F134ACE62FF123D71",
}

# B18: refundquery reply (§9.4), as received (sign included)
B18 = {
    "return_code": "SUCCESS",
    "return_msg": "OK",
    "appid": "wxd930ea5d5a258f4f",
    "mch_id": "10000100",
    "nonce_str": "TeqClE3i0mvn3DrK",
    "result_code": "SUCCESS",
    "transaction_id": "4200002315202406013425869417",
    "out_trade_no": "20240601123045000123",
    "total_fee": "1",
    "cash_fee": "1",
    "refund_count": "1",
    "out_refund_no_0": "R20240602000001",
    "refund_id_0": "50300008812024060201234567890",
    "refund_channel_0": "ORIGINAL",
    "refund_fee_0": "1",
    "refund_status_0": "SUCCESS",
    "refund_account_0": "REFUND_SOURCE_UNSETTLED_FUNDS",
    "refund_recv_accout_0": "支付用户的零钱",
    "refund_success_time_0": "2024-06-02 10:15:32",
    "sign": "A5D14B9809B9D64DCE1B47AA4B1E4B22",
}

# B19: downloadbill request (§10.1), as received (sign included)
B19 = {
    "appid": "wxd930ea5d5a258f4f",
    "mch_id": "10000100",
    "nonce_str": "21df7dc9cd8616b56919f20d9f679233",
    "bill_date": "20240601",
    "bill_type": "ALL",
    "sign": "9EA2BBBDED0D8F664DB44E48C073C9C4",
}

# B20: payment notification (§11.6), as received (sign included)
B20 = {
    "appid": "wxd930ea5d5a258f4f",
    "attach": "shop=sz01",
    "bank_type": "OTHERS",
    "cash_fee": "1",
    "fee_type": "CNY",
    "is_subscribe": "N",
    "mch_id": "10000100",
    "nonce_str": "5d2b6c2a8db53831f7eda20af46e531c",
    "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
    "out_trade_no": "20240601123045000123",
    "result_code": "SUCCESS",
    "return_code": "SUCCESS",
    "time_end": "20240601123110",
    "total_fee": "1",
    "trade_type": "JSAPI",
    "transaction_id": "4200002315202406013425869417",
    "sign": "B1142321B79837618DD55A8DE4A3B381",
}

# B21: payment notification with coupon (§11.6), as received (sign included)
B21 = {
    "appid": "wxd930ea5d5a258f4f",
    "bank_type": "CMB_DEBIT",
    "cash_fee": "90",
    "cash_fee_type": "CNY",
    "coupon_count": "1",
    "coupon_fee": "10",
    "coupon_fee_0": "10",
    "coupon_id_0": "10000012345",
    "coupon_type_0": "NO_CASH",
    "device_info": "WEB",
    "fee_type": "CNY",
    "is_subscribe": "Y",
    "mch_id": "10000100",
    "nonce_str": "a7b1c2d3e4f5061728394a5b6c7d8e9f",
    "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
    "out_trade_no": "20240601130000000200",
    "result_code": "SUCCESS",
    "return_code": "SUCCESS",
    "settlement_total_fee": "90",
    "time_end": "20240601130212",
    "total_fee": "100",
    "trade_type": "JSAPI",
    "transaction_id": "4200002301202406016543219876",
    "sign": "D193E6F730C66A029824B3FD48C9D9A0",
}

# B22: payment notification of an HMAC order, no sign_type (§11.6), as received (sign included)
B22 = {
    "appid": "wxd930ea5d5a258f4f",
    "attach": "shop=sz01",
    "bank_type": "OTHERS",
    "cash_fee": "1",
    "fee_type": "CNY",
    "is_subscribe": "N",
    "mch_id": "10000100",
    "nonce_str": "5d2b6c2a8db53831f7eda20af46e531c",
    "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
    "out_trade_no": "20240601123045000123",
    "result_code": "SUCCESS",
    "return_code": "SUCCESS",
    "time_end": "20240601123110",
    "total_fee": "1",
    "trade_type": "JSAPI",
    "transaction_id": "4200002315202406013425869417",
    "sign": "799E96C889F024D9F7E2B726E04DE854FEB8E8D4A50180DDFE58F9D2F570D070",
}

# B23: sandbox getsignkey request (§14), as received (sign included)
B23 = {
    "mch_id": "10000100",
    "nonce_str": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
    "sign": "663F5D1546FE61FA6E1E4502C475CF5A",
}

# B7/B8: JSAPI paySign for the §4.5 order (§5.4 vector 3); signType differs per algorithm.
B7 = {
    "appId": "wxd930ea5d5a258f4f",
    "timeStamp": "1717216245",
    "nonceStr": "e61463f8efa94090b1f366cccfbbb444",
    "package": "prepay_id=wx01123045912345a1b2c3d4e5f60718290000",
    "signType": "MD5",
}
B8 = dict(B7, signType="HMAC-SHA256")

# B24/B25: WeChat's current JSAPI page example (§5.4 vector 1), key JSAPI_PAGE_KEY.
B24 = {
    "appId": "wx619a931576afe069",
    "timeStamp": "1774495197",
    "nonceStr": "RIPb5Upk3ku7knU6",
    "package": "prepay_id=wx2611334392677180ea59742b3744840000",
    "signType": "MD5",
}
B25 = dict(B24, signType="HMAC-SHA256")

# B26: WeChat's service-provider JSAPI page example (§5.4 vector 2), key JSAPI_PAGE_KEY.
B26 = {
    "appId": "wxd678efh567hg6787",
    "timeStamp": "1490840662",
    "nonceStr": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
    "package": "prepay_id=wx2017033010242291fcfe0db70013231072",
    "signType": "MD5",
}

# Appendix B: (id, message, key, algorithm, expected sign). Messages with a
# "sign" field carry the expected value too; make_sign ignores it.
SIGN_VECTORS = [
    ("B1", B1, KEY, "MD5", "9A0A8659F005D6984697E2CA0A9CF3B7"),
    ("B2", B1, KEY, "HMAC-SHA256", "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"),  # noqa: E501
    ("B3", B3, KEY, "MD5", "209867E353F8E8E8D22CF881F9AE3F2B"),
    ("B4", B4, KEY, "HMAC-SHA256", "25F3BFA4FB12EAE8288A5A1FC7755F3343462F162E9499BB75FD4E75E1BB4C59"),  # noqa: E501
    ("B5", B5, KEY, "MD5", "9594894636778AA4FC9E759AD1F49CED"),
    ("B6", B6, KEY, "MD5", "2709224F3CE4B81C66EA970C33398DAF"),
    ("B7", B7, KEY, "MD5", "C84B37DCD7DF0CD209CB3C94F3C2F5DF"),
    ("B8", B8, KEY, "HMAC-SHA256", "6BAB5E7F14B8805753FF10426C7D2D478ED5DFA1E652E1B0061C0B144C9FC9AC"),  # noqa: E501
    ("B9", B9, KEY, "MD5", "C2A59E78C25CB009BD0BE51AF18C5707"),
    ("B10", B10, KEY, "MD5", "CD82D4A006F8E013EF85CEF0BBE39BD8"),
    ("B11", B11, KEY, "MD5", "953AE78F5673B0B5147586F2EC18B9B0"),
    ("B12", B12, KEY, "MD5", "5F13089726CE66FC3C73D10E307C5FFA"),
    ("B13", B13, KEY, "MD5", "BFB31A487FC00BA2D35259F7D788ED62"),
    ("B14", B14, KEY, "MD5", "1998AEAE7E4FC50B3EAFD25B31C59553"),
    ("B15", B15, KEY, "MD5", "B1D261E43643C7889185B5B8A0A42085"),
    ("B16", B16, KEY, "MD5", "F409E7D0442C7BFD085522699715478E"),
    ("B17", B17, KEY, "MD5", "5E15D695B192E55F134ACE62FF123D71"),
    ("B18", B18, KEY, "MD5", "A5D14B9809B9D64DCE1B47AA4B1E4B22"),
    ("B19", B19, KEY, "MD5", "9EA2BBBDED0D8F664DB44E48C073C9C4"),
    ("B20", B20, KEY, "MD5", "B1142321B79837618DD55A8DE4A3B381"),
    ("B21", B21, KEY, "MD5", "D193E6F730C66A029824B3FD48C9D9A0"),
    ("B22", B22, KEY, "HMAC-SHA256", "799E96C889F024D9F7E2B726E04DE854FEB8E8D4A50180DDFE58F9D2F570D070"),  # noqa: E501
    ("B23", B23, KEY, "MD5", "663F5D1546FE61FA6E1E4502C475CF5A"),
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
