"""The content store in an S3-compatible bucket (MinIO, Ceph RGW, Alibaba Cloud OSS,
Tencent Cloud COS, Huawei Cloud OBS, Amazon S3): each file is the object `<sha256>`.

A finished upload is sent from its file on disk (multipart above `s3_multipart_bytes`,
read part by part, never whole in memory); the bucket's answer is checked (the object
exists with the right size) before the local file is removed, so a file is always in
one place or the other. Objects are never changed or deleted by the server: once seen,
an object is remembered as present (`known`), so serving it needs no bucket round trip.

Terminals do not get the bytes from the server: `/blobs/<sha256>` sends them to a
short-lived signed URL of the object (`signed_url`) or, with a CDN in front of the
bucket, to `<s3_public_base_url>/<sha256>`.

boto3 is blocking: every method here runs on a worker thread (the callers use
`asyncio.to_thread`). Transport failures and the bucket's 5xx answers become
`StoreUnavailable`; anything else (a wrong bucket name, refused credentials) is a
configuration error and propagates as `botocore.exceptions.ClientError`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.client import Config
from botocore.exceptions import BotoCoreError, ClientError

from server.config import ServerConfig
from server.media.store import BlobStore, StoreRefused, StoreUnavailable, check_sha256
from shared.files import fsync_file

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

CACHE_CONTROL: Final = "public, max-age=31536000, immutable"
MAX_KNOWN: Final = 100_000


def _unavailable(e: BaseException) -> bool:
    """A transport failure or the bucket's 5xx/429, also when boto3 wrapped it (its
    S3UploadFailedError keeps the ClientError as the context)."""
    seen: BaseException | None = e
    for _ in range(3):
        if seen is None:
            return False
        if isinstance(seen, ClientError):
            status = seen.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status >= 500 or status == 429:
                return True
        elif isinstance(seen, BotoCoreError | OSError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _not_found(e: ClientError) -> bool:
    return e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def read_secret(config: ServerConfig) -> str | None:
    """The secret key: the setting, else the first line of `s3_secret_file`, else None
    (boto3's own environment and files)."""
    if config.s3_secret_access_key:
        return config.s3_secret_access_key
    if config.s3_secret_file is not None:
        return config.s3_secret_file.read_text("utf-8").splitlines()[0].strip()
    return None


class S3Store(BlobStore):
    kind = "s3"

    def __init__(self, client: S3Client, bucket: str, *, presign_seconds: int = 300,
                 public_base_url: str | None = None, multipart_bytes: int = 64 << 20) -> None:
        self._client = client
        self.bucket = bucket
        self.presign_seconds = presign_seconds
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self._transfer = TransferConfig(multipart_threshold=multipart_bytes,
                                        multipart_chunksize=multipart_bytes, max_concurrency=2,
                                        use_threads=True)
        self._known: dict[str, int] = {}  # sha256 -> size, of objects seen in the bucket
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: ServerConfig) -> S3Store:
        style = config.s3_addressing_style
        client = boto3.session.Session().client(
            "s3", endpoint_url=config.s3_endpoint_url, region_name=config.s3_region,
            aws_access_key_id=config.s3_access_key_id, aws_secret_access_key=read_secret(config),
            config=Config(
                signature_version="s3v4", connect_timeout=config.s3_timeout_seconds,
                read_timeout=config.s3_timeout_seconds, retries={"max_attempts": 2, "mode": "standard"},
                s3={"addressing_style": style},  # type: ignore[arg-type]  # checked by the setting
                # OSS, COS and OBS do not all take the newer default checksum headers
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        return cls(client, config.s3_bucket, presign_seconds=config.s3_presign_seconds,
                   public_base_url=config.s3_public_base_url, multipart_bytes=config.s3_multipart_bytes)

    def key(self, sha256: str) -> str:
        return check_sha256(sha256)

    def open(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except Exception as e:
            if _unavailable(e):
                # the server starts anyway: uploads wait and blobs answer 503 until it is back
                log.warning("the bucket %s does not answer yet: %s", self.bucket, e)
                return
            raise StoreRefused(f"the bucket {self.bucket!r} refused the server ({e}); check "
                               "s3_bucket, s3_endpoint_url, s3_region and the key pair") from e

    def _remember(self, sha256: str, size: int) -> None:
        with self._lock:
            if len(self._known) >= MAX_KNOWN:
                self._known.clear()
            self._known[sha256] = size

    def known_size(self, sha256: str) -> int | None:
        """The size of an object this process has seen in the bucket (no round trip)."""
        return self._known.get(sha256)

    def size(self, sha256: str) -> int | None:
        """The object's size, None when the bucket does not hold it."""
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except ClientError as e:
            if _not_found(e):
                return None
            if _unavailable(e):
                raise StoreUnavailable(f"bucket {self.bucket}: {e}") from e
            raise
        except Exception as e:
            if _unavailable(e):
                raise StoreUnavailable(f"bucket {self.bucket}: {e}") from e
            raise
        size = int(head["ContentLength"])
        self._remember(sha256, size)
        return size

    def exists(self, sha256: str) -> bool:
        return self.known_size(sha256) is not None or self.size(sha256) is not None

    def put(self, src: Path, sha256: str) -> None:
        want = src.stat().st_size
        if self.size(sha256) == want:
            src.unlink(missing_ok=True)
            return
        try:
            self._client.upload_file(
                str(src), self.bucket, self.key(sha256), Config=self._transfer,
                ExtraArgs={"ContentType": "application/octet-stream", "CacheControl": CACHE_CONTROL},
            )
        except Exception as e:
            if _unavailable(e):
                raise StoreUnavailable(f"bucket {self.bucket}: {e}") from e
            raise
        got = self.size(sha256)
        if got != want:
            raise StoreUnavailable(f"bucket {self.bucket} holds {got} bytes of {sha256[:12]}, "
                                   f"{want} were sent")
        src.unlink(missing_ok=True)
        log.info("stored %s in bucket %s (%d bytes)", sha256[:12], self.bucket, want)

    @contextmanager
    def local_file(self, sha256: str, scratch: Path) -> Iterator[Path]:
        if self.size(sha256) is None:
            raise FileNotFoundError(f"{sha256} is not in bucket {self.bucket}")
        fd, tmp = tempfile.mkstemp(dir=scratch, suffix=".fetch")
        os.close(fd)
        path = Path(tmp)
        try:
            try:
                self._client.download_file(self.bucket, self.key(sha256), str(path),
                                           Config=self._transfer)
            except Exception as e:
                if _unavailable(e):
                    raise StoreUnavailable(f"bucket {self.bucket}: {e}") from e
                raise
            fsync_file(path)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def signed_url(self, sha256: str) -> str:
        """Where a terminal fetches the object (no network: signing is local)."""
        if self.public_base_url is not None:
            return f"{self.public_base_url}/{self.key(sha256)}"
        return self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.key(sha256)},
            ExpiresIn=self.presign_seconds)
