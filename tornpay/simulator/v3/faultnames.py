"""Names and meanings of the simulator's v3-only notify faults."""

# v3-only notify faults (the v2 ones notify_wrong_total_fee / notify_bad_sign apply too).
V3_FAULTS = {
    "notify_probe": "v3 notify signed with a WECHATPAY/SIGNTEST/ probe signature",
    "notify_stale": "v3 notify whose Wechatpay-Timestamp is 10 minutes old (correctly signed)",
    "notify_unknown_serial": "v3 notify naming a Wechatpay-Serial the merchant does not know",
    "notify_tampered": "v3 notify whose ciphertext was altered (signature still valid)",
    "notify_wrong_aad": "v3 notify encrypted with other associated data than it declares",
}
