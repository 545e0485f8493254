"""Gateway endpoints: the public URL a custodian publishes in the CareRegistry for its record gateway.

The endpoint is public (anyone reads it on chain), so it must say nothing but where the gateway is: a bare
origin, ``https://host[:port]``, with no credentials, path, query or fragment. Plain ``http`` is accepted only
for a loopback host (development). It is the gateway's ``--origin``: readers sign in to exactly this origin
(SIWE binds the session to it), so a path would not work anyway. The CareRegistry checks only the length
(1 to 256 bytes); this module checks the form, before publishing and again before using a published URL.
"""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .errors import GatewayEndpointInvalid

#: The CareRegistry's limit (`MAX_GATEWAY_ENDPOINT_LENGTH`), in bytes.
MAX_ENDPOINT_BYTES = 256

_LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an IP literal, without brackets) is this machine."""
    if host.lower() in _LOOPBACK_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_gateway_url(url: str) -> str:
    """`url` as it is published (no trailing slash), or GatewayEndpointInvalid naming what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise GatewayEndpointInvalid("the gateway endpoint is empty: give its https origin, e.g. "
                                     "https://records.clinic.example")
    text = url.strip()
    if not text.isascii() or any(ord(c) < 0x21 or c == "\x7f" for c in text):
        raise GatewayEndpointInvalid(f"'{url}' is not a plain ASCII URL (no spaces or control characters; write an "
                                     "international host name in punycode)")
    size = len(text.encode())
    if size > MAX_ENDPOINT_BYTES:
        raise GatewayEndpointInvalid(f"the gateway endpoint is {size} bytes long; the CareRegistry takes at most "
                                     f"{MAX_ENDPOINT_BYTES}")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise GatewayEndpointInvalid(f"'{url}' is not a valid URL ({exc})") from None
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    if scheme not in ("https", "http"):
        raise GatewayEndpointInvalid(f"'{url}' is not an https URL")
    if not host:
        raise GatewayEndpointInvalid(f"'{url}' names no host")
    if scheme == "http" and not is_loopback(host):
        raise GatewayEndpointInvalid(f"'{url}' is plain http: a published gateway endpoint must be https "
                                     "(http only for a loopback host, in development)")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise GatewayEndpointInvalid(f"'{url}' holds credentials: the endpoint is public on chain, publish the "
                                     "origin only")
    if parts.query or "?" in text:
        raise GatewayEndpointInvalid(f"'{url}' has a query: the endpoint is public on chain, publish the origin only")
    if parts.fragment or "#" in text:
        raise GatewayEndpointInvalid(f"'{url}' has a fragment: publish the origin only")
    if parts.path not in ("", "/"):
        raise GatewayEndpointInvalid(f"'{url}' has a path ({parts.path}): publish the gateway's origin "
                                     "(scheme://host[:port]), the one it serves with --origin")
    default = {"https": 443, "http": 80}[scheme]
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != default:
        netloc += f":{port}"
    return f"{scheme}://{netloc.lower()}"
