"""A real S3-compatible server on loopback: moto in server mode, in its own process.

``moto[server]`` (PyPI) implements S3's REST API - buckets, objects, ranged GETs, signatures
accepted - which is what ``s3://`` hrefs meet on AWS. :class:`S3Server` starts it on a free
port, waits until it answers, and :meth:`S3Server.upload` puts a folder's files into a bucket.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ndvicube.testing._service import SubprocessService

#: Credentials the tests sign with (moto accepts any).
ACCESS_KEY, SECRET_KEY, REGION = "ndvicube-test-key", "ndvicube-test-secret", "us-west-2"


class S3Server(SubprocessService):
    """``python -m moto.server`` on ``http://127.0.0.1:PORT``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> S3Server:
        from ndvicube.testing._service import free_port

        self.port = free_port(self.host)
        self._spawn([sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)])
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"moto server exited: {self.output}")
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2).close()
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise RuntimeError(f"moto server did not answer in {timeout_s} s: {self.output}")

    def client(self):
        """A boto3 S3 client of this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def upload(
        self, folder: str | Path, bucket: str, *, pattern: str = "**/*.tif", public: bool = True
    ) -> int:
        """Create ``bucket`` and put ``folder``'s files matching ``pattern`` under their paths
        relative to ``folder``, readable by anyone when ``public`` (as Earth Search's
        ``sentinel-cogs``); return how many."""
        client, folder = self.client(), Path(folder)
        client.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        extra = {"ACL": "public-read"} if public else {}
        files = sorted(p for p in folder.glob(pattern) if p.is_file())
        for path in files:
            client.upload_file(
                str(path), bucket, path.relative_to(folder).as_posix(), ExtraArgs=extra
            )
        return len(files)
