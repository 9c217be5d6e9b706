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

from typing import Any

from glance_features.catalog import Entry, GlanceUse
from glance_features.detector import ProbeContext
from glance_features.detectors import _stores
from glance_features.model import FeatureResult, Status

DRIVER = "s3"
# What glance_store/_drivers/s3.py imports (try/except ImportError, l.26-29).
MODULES = ("boto3.session", "botocore.client", "botocore.exceptions", "botocore.utils")
REQUIRED = ("s3_store_host", "s3_store_access_key", "s3_store_secret_key", "s3_store_bucket")

CATALOG = Entry(
    purpose=(
        "glance_store's s3 driver keeps image data in an S3-compatible object store "
        "through boto3, which neither Glance nor glance_store installs (extra 's3')."
    ),
    options=_stores.SELECTION,
    required_when=_stores.required_when(DRIVER),
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
)

# Runs as the service user with the service's import path: the client
# glance_store's _create_s3_client builds, then head_bucket as _bucket_exists.
DEEP = r"""
import json, sys
p = json.loads(sys.argv[1])
sys.path[:] = p["path"]
from boto3 import session as boto_session
from botocore import client as boto_client
from botocore import exceptions as boto_exceptions
out = {}
try:
    s = boto_session.Session(aws_access_key_id=p["access_key"],
                             aws_secret_access_key=p["secret_key"])
    config = boto_client.Config(s3={"addressing_style": p["url_format"]},
                                connect_timeout=p["timeout"], read_timeout=p["timeout"],
                                retries={"total_max_attempts": 1})
    client = s.client(service_name="s3", endpoint_url=p["endpoint"],
                      region_name=p["region"] or None, use_ssl=p["https"],
                      verify=p["cacert"] or None, config=config)
    client.head_bucket(Bucket=p["bucket"])
    out = {"reached": True, "bucket_exists": True}
except boto_exceptions.ClientError as e:
    code = e.response.get("Error", {}).get("Code")
    out = {"reached": True, "bucket_exists": False if code == "404" else None,
           "code": code, "error": str(e)[:300]}
except Exception as e:
    out = {"reached": False, "error": type(e).__name__ + ": " + str(e)[:300]}
print(json.dumps(out))
"""


class StoreS3Detector:
    name = "store-s3"
    summary = "glance_store s3 backends: boto3 importable, options set; --deep: bucket exists"
    catalog = CATALOG

    def probe(self, context: ProbeContext) -> FeatureResult:
        user = _stores.checked_as(context)

        def missing(found: dict[str, Any]) -> _stores.Verdict | None:
            consequence = "glance_store disables adding images to s3 stores"
            verdict = _stores.modules_verdict(found, MODULES, CATALOG.python[0], consequence)
            if verdict is not None:
                verdict.remediation += _system(context)
            return verdict

        def boto3_file(found: dict[str, Any]) -> dict[str, Any]:
            boto = found["modules"]["boto3.session"]
            return {"boto3": boto.get("file") if boto.get("ok") else None}

        return _stores.probe_driver(
            self.name,
            DRIVER,
            context,
            MODULES,
            missing,
            lambda backend, found: self._backend(backend, context, found, user),
            _stores.option_files(context.settings, "s3_store_cacert"),
            facts=boto3_file,
        )

    def _backend(
        self,
        backend: _stores.Backend,
        context: ProbeContext,
        found: dict[str, Any],
        user: str,
    ) -> _stores.Verdict:
        settings = context.settings
        values: dict[str, Any] = {}
        try:
            for name in REQUIRED:
                values[name] = backend.get(settings, name)
            values["region"] = backend.get(settings, "s3_store_region_name", default="")
            values["chunk"] = backend.get(
                settings, "s3_store_large_object_chunk_size", "int", default=10
            )
            values["pools"] = backend.get(settings, "s3_store_thread_pools", "int", default=10)
            values["url_format"] = backend.get(
                settings, "s3_store_bucket_url_format", default="auto"
            )
            values["cacert"] = backend.get(settings, "s3_store_cacert", default="")
            values["create_on_put"] = backend.get(
                settings, "s3_store_create_bucket_on_put", "bool", default=False
            )
        except _stores.ConfigError as exc:
            return _stores.Verdict(Status.UNAVAILABLE, str(exc), {}, ["fix the option's value"])
        host = str(values["s3_store_host"] or "")
        details: dict[str, Any] = {"s3_store_host": host, "bucket": values["s3_store_bucket"]}
        unset = [n for n in REQUIRED if not values[n]]
        if unset:
            return _stores.Verdict(
                Status.UNAVAILABLE,
                f"{', '.join(backend.label(n) for n in unset)} not set: glance_store "
                f'refuses ("Could not find {unset[0]} in configuration options") and '
                "disables adding images",
                details,
                [f"set {backend.label(n)}" for n in unset],
            )
        if values["chunk"] < 5:
            return _stores.Verdict(
                Status.UNAVAILABLE,
                "s3_store_large_object_chunk_size must be at least 5 (MB); glance_store "
                "disables adding images",
                details,
                [f"set {backend.label('s3_store_large_object_chunk_size')} = 10"],
            )
        if values["pools"] <= 0:
            return _stores.Verdict(
                Status.UNAVAILABLE,
                "s3_store_thread_pools must be a positive integer; glance_store disables "
                "adding images",
                details,
                [f"set {backend.label('s3_store_thread_pools')} = 10"],
            )
        if values["cacert"]:
            seen = found["read"][str(values["cacert"])]
            if not seen["ok"]:
                return _stores.Verdict(
                    Status.UNAVAILABLE,
                    f"s3_store_cacert {values['cacert']} is not readable by {user}: "
                    f"{seen.get('errno')} ({seen.get('error')})",
                    details,
                    [f"make {values['cacert']} readable by {user}"],
                )
        if not context.deep:
            return _stores.Verdict(
                Status.AVAILABLE,
                f"boto3 imports and the options are set (endpoint {host}, bucket "
                f"{values['s3_store_bucket']}); --deep asks the endpoint for the bucket",
                details,
            )
        return _deep(backend, context, values, details)


def _deep(
    backend: _stores.Backend,
    context: ProbeContext,
    values: dict[str, Any],
    details: dict[str, Any],
) -> _stores.Verdict:
    host = str(values["s3_store_host"])
    https = host.startswith("https://")
    endpoint = host if host.startswith(("http://", "https://")) else "http://" + host
    payload = {
        "access_key": values["s3_store_access_key"],
        "secret_key": values["s3_store_secret_key"],
        "bucket": values["s3_store_bucket"],
        "region": values["region"],
        "url_format": values["url_format"],
        "cacert": values["cacert"],
        "endpoint": endpoint,
        "https": https,
        # One attempt, connect and read each bounded, and about a second kept
        # for the child to import boto3 and say what happened.
        "timeout": max(0.2, min(10.0, (context.remaining() - 1.0) / 2)),
    }
    try:
        seen = _stores.run_python(context, DEEP, payload)
    except _stores.CheckFailed as exc:
        return _stores.Verdict(Status.UNKNOWN, str(exc), details)
    details.update({k: seen[k] for k in ("reached", "bucket_exists", "code") if k in seen})
    bucket = values["s3_store_bucket"]
    if not seen.get("reached"):
        return _stores.Verdict(
            Status.UNAVAILABLE,
            f"cannot reach {endpoint}: {seen.get('error')}; uploads to this store fail",
            details,
            [f"check {backend.label('s3_store_host')} and the route to {endpoint}"],
        )
    if seen.get("bucket_exists"):
        return _stores.Verdict(Status.AVAILABLE, f"bucket {bucket} exists at {endpoint}", details)
    if seen.get("bucket_exists") is False:
        if values["create_on_put"]:
            return _stores.Verdict(
                Status.AVAILABLE,
                f"bucket {bucket} does not exist at {endpoint} yet; Glance creates it on "
                "the first upload (s3_store_create_bucket_on_put)",
                details,
            )
        return _stores.Verdict(
            Status.UNAVAILABLE,
            f"bucket {bucket} does not exist at {endpoint}: glance_store's add() fails "
            '("Please set the s3_store_create_bucket_on_put option")',
            details,
            [
                f"create the bucket {bucket}, or set "
                f"{backend.label('s3_store_create_bucket_on_put')} = true"
            ],
        )
    return _stores.Verdict(
        Status.UNAVAILABLE,
        f"{endpoint} refused head_bucket {bucket}: {seen.get('code')} ({seen.get('error')}); "
        "glance_store's add() fails with the same answer",
        details,
        [f"check {backend.label('s3_store_access_key')} and the bucket's policy"],
    )


def _system(context: ProbeContext) -> list[str]:
    from glance_features.remediation import install_system_packages

    return [
        f"or, for a Glance from distribution packages: {step}"
        for step in install_system_packages(CATALOG.packages, context.distro)
    ]
