"""Typed failures of WeChat calls: transport, protocol (return_code), signature, business, OAuth."""

from typing import Mapping, Optional

# err_codes WeChat documents as "retry with identical parameters" (reference §4.3, §8.3).
RETRYABLE_ERR_CODES = frozenset({"SYSTEMERROR", "BIZERR_NEED_RETRY"})


class WeChatError(Exception):
    """Base of every failure of a call to WeChat. ``retryable`` says if resending may help.

    Messages carry codes and WeChat's own texts only, never keys or secrets.
    """

    retryable = False


class TransportError(WeChatError):
    """Timeout, connection failure or non-2xx HTTP status: the call may not have happened."""

    retryable = True

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status


class ProtocolError(WeChatError):
    """``return_code`` FAIL (layer 1), or a reply that is not acceptable WeChat XML."""

    def __init__(self, return_msg: str, fields: Optional[Mapping[str, str]] = None):
        super().__init__(f"WeChat refused the request: {return_msg}")
        self.return_msg = return_msg
        self.fields = dict(fields or {})


class ResponseSignatureError(WeChatError):
    """A SUCCESS reply whose ``sign`` is missing or wrong; its content must not be trusted."""

    def __init__(self, message: str = "reply signature missing or invalid"):
        super().__init__(message)


class BusinessError(WeChatError):
    """``result_code`` FAIL (layer 2) on a correctly signed reply."""

    def __init__(
        self,
        err_code: str,
        err_code_des: str = "",
        fields: Optional[Mapping[str, str]] = None,
    ):
        super().__init__(f"{err_code}: {err_code_des}" if err_code_des else err_code)
        self.err_code = err_code
        self.err_code_des = err_code_des
        self.fields = dict(fields or {})

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.err_code in RETRYABLE_ERR_CODES


class OAuthError(WeChatError):
    """The OAuth API answered with an ``errcode`` (e.g. 40029 invalid code, 40163 code used)."""

    def __init__(self, errcode: int, errmsg: str = ""):
        super().__init__(f"OAuth error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
