"""A JSON body from WeChat as one object, or the caller's error saying why it is not one."""

import json
from typing import Callable, Union


def json_object(raw: Union[bytes, str], what: str,
                error: Callable[[str], Exception] = ValueError) -> dict:
    """``raw`` (UTF-8) as a dict; else ``error("<what> is not JSON")`` or ``"... a JSON object"``.

    v3 replies, decrypted v3 resources and the OAuth replies are all JSON
    objects; anything else is refused the same way, in the caller's error type.
    """
    try:
        data = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except ValueError:  # UnicodeDecodeError is one too
        raise error(f"{what} is not JSON") from None
    if not isinstance(data, dict):
        raise error(f"{what} is not a JSON object")
    return data
