"""The optional API key on the routes that change things or hand out artifacts."""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

API_KEY_HEADER = "X-API-Key"

# auto_error=False: the key is optional when FLUXO_API_KEY is unset, so the
# check below decides, but the scheme still shows in the OpenAPI schema.
_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="Needed when FLUXO_API_KEY is set.")


def key_matches(expected: str, given: str | None) -> bool:
    if given is None:
        return False
    # Constant time, so response timing does not leak how much of a guess was right.
    return hmac.compare_digest(expected.encode(), given.encode())


async def require_api_key(request: Request, given: str | None = Depends(_scheme)) -> None:
    secret = request.app.state.gateway.settings.fluxo_api_key
    if secret is None:
        return
    if not key_matches(secret.get_secret_value(), given):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"missing or wrong API key: send it in the {API_KEY_HEADER} header",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )
