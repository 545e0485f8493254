"""Schemathesis hooks for the gateway fuzz test (loaded by `schemathesis` from SCHEMATHESIS_HOOKS)."""
import schemathesis

PUBLIC = {"/auth/nonce", "/auth/siwe", "/healthz", "/fhir/metadata"}


@schemathesis.check
def no_body_without_sign_in(ctx, response, case):
    """An unauthenticated caller of a protected operation gets 401 (413, or 405 for a method the route lacks)
    and not one byte of body."""
    if case.operation.path in PUBLIC:
        return None
    headers = {k.lower() for k in (case.headers or {})}
    if "authorization" in headers:
        return None
    if response.status_code not in (401, 405, 413):
        raise AssertionError(f"unauthenticated {case.method} {case.formatted_path} answered {response.status_code}")
    if response.content:
        body = response.content[:80]
        raise AssertionError(f"unauthenticated {case.method} {case.formatted_path} got a body: {body!r}")
    return None
