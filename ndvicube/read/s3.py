"""How ``s3://`` hrefs are reached: the same environment GDAL reads, so both readers agree.

obstore reads the standard variables itself (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``,
``AWS_REQUEST_PAYER=requester`` for requester-pays buckets, ``AWS_SKIP_SIGNATURE``). This
module adds what it does not read:

* GDAL's names for the same settings - ``AWS_NO_SIGN_REQUEST=YES``, ``AWS_S3_ENDPOINT`` with
  ``AWS_HTTPS=NO``, ``AWS_VIRTUAL_HOSTING=FALSE`` - so one environment serves
  ``compute.reader: range`` and ``gdal``;
* the standard files: ``~/.aws/credentials`` and ``~/.aws/config`` (or
  ``AWS_SHARED_CREDENTIALS_FILE``/``AWS_CONFIG_FILE``), profile ``AWS_PROFILE`` or
  ``default``, when the environment holds no keys;
* unsigned requests when no credentials are found at all (a public bucket such as Earth
  Search's ``sentinel-cogs``), instead of obstore asking an EC2 metadata endpoint that is not
  there.

Signed requests are not sent by obstore's client: it signs each request with headers, and on a
redirect to another host reqwest drops ``Authorization`` but keeps ``x-amz-security-token`` (a
session token went to the other host on every request). obstore presigns the object's URL
instead (:class:`PresignedUrls`: the credential, token included, travels in the query string of
the request to the endpoint) and ndvicube's HTTP client fetches it
(:mod:`ndvicube.read.http_store`), which follows redirects itself: the other host gets no
signature, no token, no key (:mod:`ndvicube.redirects`). Unsigned requests take the same way,
their URL shaped by obstore too, so every ``s3://`` read meets the same retries, ``Retry-After``
and short-file checks as ``http(s)://`` ones.
"""

from __future__ import annotations

import configparser
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

#: Variables through which obstore finds credentials by itself (keys, containers, web identity).
_ENV_CREDENTIALS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


def s3_options(env: dict[str, str] | None = None, home: Path | None = None) -> dict[str, Any]:
    """obstore ``S3Store`` settings from ``env`` (default: the process's) and the AWS files."""
    env = dict(os.environ if env is None else env)
    home = Path.home() if home is None else home
    options: dict[str, Any] = {}
    if _yes(env.get("AWS_NO_SIGN_REQUEST")):
        options["skip_signature"] = True
    if env.get("AWS_S3_ENDPOINT") and not env.get("AWS_ENDPOINT_URL"):
        scheme = "http" if env.get("AWS_HTTPS", "YES").upper() in ("NO", "FALSE", "0") else "https"
        options["endpoint"] = f"{scheme}://{env['AWS_S3_ENDPOINT']}"
    elif env.get("AWS_ENDPOINT_URL"):
        options["endpoint"] = env["AWS_ENDPOINT_URL"]
    if env.get("AWS_VIRTUAL_HOSTING", "").upper() in ("FALSE", "NO", "0"):
        options["virtual_hosted_style_request"] = False
    if not env.get("AWS_REGION") and not env.get("AWS_DEFAULT_REGION"):
        region = _profile(env, home, "config").get("region")
        if region:
            options["region"] = region
    if "skip_signature" not in options and not any(env.get(k) for k in _ENV_CREDENTIALS):
        keys = _profile(env, home, "credentials")
        if keys.get("aws_access_key_id") and keys.get("aws_secret_access_key"):
            options["access_key_id"] = keys["aws_access_key_id"]
            options["secret_access_key"] = keys["aws_secret_access_key"]
            if keys.get("aws_session_token"):
                options["session_token"] = keys["aws_session_token"]
        else:
            options["skip_signature"] = True
    return options


#: How long a presigned URL is valid: one request's time, retries included (each attempt is
#: signed again), with room for a slow answer.
PRESIGNED_FOR = timedelta(minutes=15)


def signs(options: dict[str, Any], env: dict[str, str] | None = None) -> bool:
    """Whether a store made with ``options`` (:func:`s3_options`) signs its requests."""
    env = dict(os.environ if env is None else env)
    return not options.get("skip_signature") and not _yes(env.get("AWS_SKIP_SIGNATURE"))


class PresignedUrls:
    """The presigned ``GET`` URL of each object of a bucket, made by obstore from ``options``
    (:func:`s3_options`; the endpoint, region and credentials obstore finds itself).

    For a store that does not sign (:func:`signs` false), the object's plain URL: obstore shapes
    it (endpoint, virtual-hosted or path style) with placeholder keys, and the query they sign
    is dropped, so no request carries a signature.
    """

    def __init__(self, bucket: str, options: dict[str, Any], client: dict[str, Any]) -> None:
        from obstore.store import S3Store

        self.signed = signs(options)
        if not self.signed:
            options = {k: v for k, v in options.items() if k != "skip_signature"}
            options |= {"access_key_id": "unsigned", "secret_access_key": "unsigned"}
        self.store = S3Store(bucket, **options, client_options=client)

    async def __call__(self, path: str) -> str:
        import obstore

        url = await obstore.sign_async(self.store, "GET", path, PRESIGNED_FOR)
        return url if self.signed else url.split("?", 1)[0]

    def endpoint(self) -> str:
        """The scheme and host the URLs name (for the connection pool)."""
        import obstore

        return obstore.sign(self.store, "GET", "probe", PRESIGNED_FOR).split("?", 1)[0]


def _profile(env: dict[str, str], home: Path, kind: str) -> dict[str, str]:
    """The profile's section of ``~/.aws/credentials`` or ``~/.aws/config`` ({} if none)."""
    variable = "AWS_SHARED_CREDENTIALS_FILE" if kind == "credentials" else "AWS_CONFIG_FILE"
    path = Path(env.get(variable) or home / ".aws" / kind)
    name = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    if kind == "config" and name != "default":
        name = f"profile {name}"
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error):
        return {}
    return dict(parser[name]) if parser.has_section(name) else {}


def _yes(value: str | None) -> bool:
    return (value or "").upper() in ("YES", "TRUE", "1", "ON")
