"""store-swift: glance_store's swift driver can import swiftclient.

Mirrors ``glance_store._drivers.swift.store.BaseStore.configure()`` (5.7):
without ``swiftclient`` it raises BadStoreConfiguration outside
``configure_add``, so ``create_multi_stores`` (and ``create_stores``) let it
through and Glance fails to start. The account references file
(``swift_store_config_file``) must be readable by the service user. No Swift
or Keystone runs here, so ``--deep`` only opens a TCP connection to the
``auth_address`` given in the options.
"""

from __future__ import annotations

import urllib.parse

from glance_features.catalog import Entry, GlanceUse
from glance_features.detector import ProbeContext
from glance_features.detectors import _backends, _stores
from glance_features.model import JSON, Status, Verdict
from glance_features.options import STORE_SELECTION
from glance_features.runas import checked_as

DRIVER = "swift"
MODULES = ("swiftclient",)

CATALOG = Entry(
    purpose=(
        "glance_store's swift driver keeps image data in OpenStack Swift through "
        "python-swiftclient, which neither Glance nor glance_store installs (extra 'swift')."
    ),
    options=STORE_SELECTION,
    required_when=_backends.required_when(DRIVER),
    python=("python-swiftclient>=3.2.0",),
    packages={"debian": "python3-swiftclient", "rhel": "python3-swiftclient"},
    verify=("glance-features --feature store-swift",),
    glance=GlanceUse("glance_store/_drivers/swift/store.py: BaseStore.configure()"),
    secrets=(
        "swift_store_key",
        "swift_store_user",
        "swift_store_application_credential_id",
        "swift_store_application_credential_secret",
    ),
)


class StoreSwiftDetector(_stores.StoreDetector):
    name = "store-swift"
    summary = "glance_store swift backends: swiftclient importable, references file readable"
    catalog = CATALOG
    driver = DRIVER
    modules = MODULES
    without_modules = _stores.FAILS_TO_START
    file_options = ("swift_store_config_file",)

    def judge(
        self, backend: _backends.Backend, found: _stores.Found, context: ProbeContext
    ) -> Verdict:
        user = checked_as(context)
        path = backend.get(context.settings, "swift_store_config_file")
        auth = backend.get(context.settings, "swift_store_auth_address")
        details: dict[str, JSON] = {"swift_store_config_file": path}
        if path:
            bad = _stores.unreadable_file(
                found,
                str(path),
                user,
                "swift_store_config_file",
                "glance_store cannot read its account references and disables the store",
            )
            if bad is not None:
                return bad
        elif not auth:
            return Verdict(
                Status.UNAVAILABLE,
                f"neither {backend.label('swift_store_config_file')} nor "
                f"{backend.label('swift_store_auth_address')} is set: glance_store "
                'disables adding images ("A value for swift_store_auth_address is '
                'required")',
                details,
                [f"set {backend.label('swift_store_config_file')} = SWIFT_REFERENCES_FILE"],
            )
        if context.deep and auth:
            parsed = urllib.parse.urlsplit(str(auth))
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            details["auth_address"] = auth
            why = _stores.tcp_reach(parsed.hostname or "", port, context)
            if why is not None:
                return Verdict(
                    Status.UNAVAILABLE,
                    f"the auth address {auth} does not accept connections ({why})",
                    details,
                    [f"check {backend.label('swift_store_auth_address')}"],
                )
        return Verdict(
            Status.AVAILABLE,
            "swiftclient imports" + (f"; {user} can read {path}" if path else ""),
            details,
        )
