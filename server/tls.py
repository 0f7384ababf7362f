"""TLS: served directly (a small county without a proxy) or ended at the proxy; either
way, the certificate's sha256 is what terminals pin at enrollment."""

from __future__ import annotations

import hashlib
import ssl

from server.config import ServerConfig


def tls_context(config: ServerConfig) -> ssl.SSLContext | None:
    if config.tls_certificate is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_certificate, config.tls_key)
    return context


def tls_pin(config: ServerConfig) -> str | None:
    """The sha256 of the certificate terminals pin at enrollment (hex, lower case)."""
    if config.tls_pin_sha256:
        return config.tls_pin_sha256.replace(":", "").lower()
    if config.tls_certificate is None:
        return None
    der = ssl.PEM_cert_to_DER_cert(config.tls_certificate.read_text(encoding="ascii"))
    return hashlib.sha256(der).hexdigest()
