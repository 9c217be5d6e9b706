"""store-s3: glance_store's S3 driver has boto3 and a usable configuration.

Mirrors ``glance_store._drivers.s3.Store.configure_add()`` (5.7): without
``boto3.session`` and the ``botocore`` modules it imports, glance_store
disables adding images; so it does for an empty ``s3_store_host``,
``s3_store_access_key``, ``s3_store_secret_key`` or ``s3_store_bucket``, a
chunk size below 5 MiB or no thread pools. ``configure`` never connects:
``add()`` is the first to find a missing bucket, so ``--deep`` asks the
endpoint for the bucket (``head_bucket``) with the client glance_store builds.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from glance_features import checks, runas
from glance_features.catalog import Entry, GlanceUse
from glance_features.detector import ProbeContext
from glance_features.detectors import _backends, _stores
from glance_features.model import JSON, Status, Verdict
from glance_features.options import STORE_SELECTION
from glance_features.runas import checked_as
from glance_features.settings import Settings

DRIVER = "s3"
# What glance_store/_drivers/s3.py imports (try/except ImportError, l.26-29).
MODULES = ("boto3.session", "botocore.client", "botocore.exceptions", "botocore.utils")
Required = Literal["s3_store_host", "s3_store_access_key", "s3_store_secret_key", "s3_store_bucket"]
REQUIRED: tuple[Required, ...] = (
    "s3_store_host",
    "s3_store_access_key",
    "s3_store_secret_key",
    "s3_store_bucket",
)


class Values(TypedDict):
    """The options glance_store's s3 driver reads, with its defaults."""

    s3_store_host: str | None
    s3_store_access_key: str | None
    s3_store_secret_key: str | None
    s3_store_bucket: str | None
    region: str | None
    chunk: int
    pools: int
    url_format: str | None
    cacert: str | None
    create_on_put: bool


CATALOG = Entry(
    purpose=(
        "glance_store's s3 driver keeps image data in an S3-compatible object store "
        "through boto3, which neither Glance nor glance_store installs (extra 's3')."
    ),
    options=STORE_SELECTION,
    required_when=_backends.required_when(DRIVER),
    python=("boto3>=1.9.199",),
    packages={
        "debian": "python3-boto3",
        "rhel": "python3-boto3",
        "suse": "python3-boto3",
        "arch": "python-boto3",
        "alpine": "py3-boto3",
    },
    verify=("glance-features --feature store-s3 --deep",),
    glance=GlanceUse("glance_store/_drivers/s3.py: Store.configure_add(), Store.add()"),
    secrets=("s3_store_access_key", "s3_store_secret_key"),
)


class StoreS3Detector(_stores.StoreDetector):
    name = "store-s3"
    summary = "glance_store s3 backends: boto3 importable, options set; --deep: bucket exists"
    catalog = CATALOG
    driver = DRIVER
    modules = MODULES
    without_modules = "glance_store disables adding images to s3 stores"
    file_options = ("s3_store_cacert",)

    def facts(self, found: _stores.Found) -> dict[str, JSON]:
        boto = found.modules["boto3.session"]
        return {"boto3": boto["file"] if boto["failure"] is None else None}

    def judge(
        self, backend: _backends.Backend, found: _stores.Found, context: ProbeContext
    ) -> Verdict:
        return self._backend(backend, context, found, checked_as(context))

    def _backend(
        self,
        backend: _backends.Backend,
        context: ProbeContext,
        found: _stores.Found,
        user: str,
    ) -> Verdict:
        values = _values(backend, context.settings)
        host = str(values["s3_store_host"] or "")
        details: dict[str, JSON] = {"s3_store_host": host, "bucket": values["s3_store_bucket"]}
        refused = _refused_options(backend, values, details)
        if refused is not None:
            return refused
        if values["cacert"]:
            unreadable = found.read(str(values["cacert"]))["failure"]
            if unreadable is not None:
                return Verdict(
                    Status.UNAVAILABLE,
                    f"s3_store_cacert {values['cacert']} is not readable by {user}: "
                    f"{unreadable['errno']} ({unreadable['error']})",
                    details,
                    [f"make {values['cacert']} readable by {user}"],
                )
        if not context.deep:
            return Verdict(
                Status.AVAILABLE,
                f"boto3 imports and the options are set (endpoint {host}, bucket "
                f"{values['s3_store_bucket']}); --deep asks the endpoint for the bucket",
                details,
            )
        return _deep(backend, context, values, details)


def _values(backend: _backends.Backend, settings: Settings) -> Values:
    """The options glance_store's s3 driver reads, with its defaults."""
    return Values(
        s3_store_host=backend.get(settings, "s3_store_host"),
        s3_store_access_key=backend.get(settings, "s3_store_access_key"),
        s3_store_secret_key=backend.get(settings, "s3_store_secret_key"),
        s3_store_bucket=backend.get(settings, "s3_store_bucket"),
        region=backend.get(settings, "s3_store_region_name", default=""),
        chunk=backend.get(settings, "s3_store_large_object_chunk_size", "int", default=10),
        pools=backend.get(settings, "s3_store_thread_pools", "int", default=10),
        url_format=backend.get(settings, "s3_store_bucket_url_format", default="auto"),
        cacert=backend.get(settings, "s3_store_cacert", default=""),
        create_on_put=backend.get(settings, "s3_store_create_bucket_on_put", "bool", default=False),
    )


def _refused_options(
    backend: _backends.Backend, values: Values, details: dict[str, JSON]
) -> Verdict | None:
    """Options glance_store's configure() refuses, disabling adding images."""
    unset = [n for n in REQUIRED if not values[n]]
    if unset:
        return Verdict(
            Status.UNAVAILABLE,
            f"{', '.join(backend.label(n) for n in unset)} not set: glance_store "
            f'refuses ("Could not find {unset[0]} in configuration options") and '
            "disables adding images",
            details,
            [f"set {backend.label(n)}" for n in unset],
        )
    if values["chunk"] < 5:
        return Verdict(
            Status.UNAVAILABLE,
            "s3_store_large_object_chunk_size must be at least 5 (MB); glance_store "
            "disables adding images",
            details,
            [f"set {backend.label('s3_store_large_object_chunk_size')} = 10"],
        )
    if values["pools"] <= 0:
        return Verdict(
            Status.UNAVAILABLE,
            "s3_store_thread_pools must be a positive integer; glance_store disables adding images",
            details,
            [f"set {backend.label('s3_store_thread_pools')} = 10"],
        )
    return None


def _deep(
    backend: _backends.Backend,
    context: ProbeContext,
    values: Values,
    details: dict[str, JSON],
) -> Verdict:
    host = str(values["s3_store_host"])
    https = host.startswith("https://")
    endpoint = host if host.startswith(("http://", "https://")) else "http://" + host
    request = checks.S3Request(
        access_key=str(values["s3_store_access_key"]),
        secret_key=str(values["s3_store_secret_key"]),
        bucket=str(values["s3_store_bucket"]),
        region=str(values["region"] or ""),
        url_format=str(values["url_format"]),
        cacert=str(values["cacert"] or ""),
        endpoint=endpoint,
        https=https,
        # One attempt, connect and read each bounded, and about a second kept
        # for the child to import boto3 and say what happened.
        timeout=max(0.2, min(10.0, (context.remaining() - 1.0) / 2)),
    )
    try:
        seen = runas.run(context, checks.s3_bucket, request)
    except runas.CheckFailed as exc:
        return Verdict(Status.UNKNOWN, str(exc), details)
    details.update(reached=seen["reached"], bucket_exists=seen["bucket_exists"], code=seen["code"])
    error = seen["failure"]["error"] if seen["failure"] else "?"
    if not seen["reached"]:
        return Verdict(
            Status.UNAVAILABLE,
            f"cannot reach {endpoint}: {error}; uploads to this store fail",
            details,
            [f"check {backend.label('s3_store_host')} and the route to {endpoint}"],
        )
    return _bucket(backend, seen, error, values, endpoint, details)


def _bucket(
    backend: _backends.Backend,
    seen: checks.S3Found,
    error: str,
    values: Values,
    endpoint: str,
    details: dict[str, JSON],
) -> Verdict:
    """What the endpoint said of the bucket, as glance_store's add() meets it."""
    bucket = values["s3_store_bucket"]
    if seen["bucket_exists"]:
        return Verdict(Status.AVAILABLE, f"bucket {bucket} exists at {endpoint}", details)
    if seen["bucket_exists"] is False:
        if values["create_on_put"]:
            return Verdict(
                Status.AVAILABLE,
                f"bucket {bucket} does not exist at {endpoint} yet; Glance creates it on "
                "the first upload (s3_store_create_bucket_on_put)",
                details,
            )
        return Verdict(
            Status.UNAVAILABLE,
            f"bucket {bucket} does not exist at {endpoint}: glance_store's add() fails "
            '("Please set the s3_store_create_bucket_on_put option")',
            details,
            [
                f"create the bucket {bucket}, or set "
                f"{backend.label('s3_store_create_bucket_on_put')} = true"
            ],
        )
    return Verdict(
        Status.UNAVAILABLE,
        f"{endpoint} refused head_bucket {bucket}: {seen['code']} ({error}); "
        "glance_store's add() fails with the same answer",
        details,
        [f"check {backend.label('s3_store_access_key')} and the bucket's policy"],
    )
