"""WeChat's daily bill: fetch (v2 downloadbill; v3 tradebill later), store, parse, reconcile."""
