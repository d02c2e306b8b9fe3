"""The curl client for WeChat calls: handles made on demand, a small upload buffer per call."""

import logging

import pycurl
from tornado.curl_httpclient import CurlAsyncHTTPClient

logger = logging.getLogger("tornpay.context")

# libcurl's default upload buffer is 64 KiB per transfer, and much of it is
# touched: at 1,000 unified orders in flight that was ~30 MB of the server's
# peak memory. WeChat's requests are a few KiB of XML or JSON; 16 KiB is
# libcurl's minimum and still sends any body (in more than one chunk).
UPLOAD_BUFFER_BYTES = 16 * 1024


class LeanCurlClient(CurlAsyncHTTPClient):
    """``CurlAsyncHTTPClient`` that creates its easy handles as calls need them.

    Tornado's builds all ``max_clients`` handles at start-up (about 6 MB for
    1,000), though a notify-only server hardly calls WeChat. Here a handle is
    made when a call finds none free and fewer than ``max_clients`` exist;
    handles are reused as before, so ``peak`` is the most calls ever in
    flight at once (logged on close: the figure to size
    ``wechat.max_concurrent_calls`` by). More calls than that wait in order.
    """

    def initialize(self, max_clients: int = 10, **kwargs) -> None:  # type: ignore[override]
        super().initialize(max_clients=0, **kwargs)
        self.max_clients = max_clients

    @property
    def peak(self) -> int:
        return len(self._curls)

    def fetch_impl(self, request, callback) -> None:
        # Tornado starts queued calls on handles from _free_list (in fetch_impl
        # itself and whenever a call finishes): add one while below the cap.
        if not self._free_list and len(self._curls) < self.max_clients:
            curl = self._curl_create()
            self._curls.append(curl)
            self._free_list.append(curl)
        super().fetch_impl(request, callback)

    def _curl_setup_request(self, curl, request, buffer, headers) -> None:
        super()._curl_setup_request(curl, request, buffer, headers)
        # Set per call: Tornado's curl.reset() after each call restores the default.
        curl.setopt(pycurl.UPLOAD_BUFFERSIZE, UPLOAD_BUFFER_BYTES)

    def close(self) -> None:
        if self._curls and not self._closed:
            logger.info("WeChat HTTP client: at most %d calls at once (cap %d)",
                        len(self._curls), self.max_clients)
        super().close()
