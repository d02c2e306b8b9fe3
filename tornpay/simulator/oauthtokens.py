"""Web-authorization access tokens the simulator issued, for /sns/userinfo and /sns/auth."""

from dataclasses import dataclass
from typing import Dict, Optional

TOKEN_TTL = 7200  # expires_in of the web access_token (reference §13.3)
MAX_TOKENS = 10000  # bounded: the oldest are forgotten first


@dataclass
class AccessToken:
    token: str
    appid: str
    openid: str
    scope: str
    issued_at: float


class TokenStore:
    """Issued tokens by value; expired ones are pruned as new ones arrive."""

    def __init__(self):
        self._tokens: Dict[str, AccessToken] = {}

    def add(self, entry: AccessToken) -> None:
        now = entry.issued_at
        if len(self._tokens) >= MAX_TOKENS:
            self._tokens = {k: t for k, t in self._tokens.items()
                            if now - t.issued_at <= TOKEN_TTL}
            while len(self._tokens) >= MAX_TOKENS:
                self._tokens.pop(next(iter(self._tokens)))
        self._tokens[entry.token] = entry

    def get(self, token: str, now: float) -> Optional[AccessToken]:
        entry = self._tokens.get(token)
        if entry is None or now - entry.issued_at > TOKEN_TTL:
            return None
        return entry

    def clear(self) -> None:
        self._tokens.clear()
