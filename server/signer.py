"""The server's Ed25519 signing key: made on first run, kept in the data directory.

Terminals pin the public key at enrollment; the mDNS TXT record carries its fingerprint
so a technician can tell the county server from an impostor at a glance.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from shared import signing
from shared.files import fsync_dir


class Signer:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key = key.public_key()
        self.fingerprint = signing.fingerprint(self.public_key)
        self.public_key_b64 = base64.b64encode(signing.public_key_bytes(self.public_key)).decode()

    def sign(self, data: bytes) -> str:
        return signing.sign(self._key, data)

    @classmethod
    def load_or_create(cls, path: Path) -> Signer:
        """The key in `path`, made there first if there is none (blocking). Several
        server processes starting at once on one data directory all get the same key:
        the file is put in place with a hard link, which fails if another got there first."""
        if path.exists():
            return cls._load(path)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")  # 0600
        tmp = Path(tmp_name)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return cls._load(path)  # another process made it first: theirs is the key
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)
        return cls(key)

    @classmethod
    def _load(cls, path: Path) -> Signer:
        key = load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 key")
        return cls(key)
