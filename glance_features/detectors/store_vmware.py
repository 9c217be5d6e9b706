"""store-vmware: glance_store's VMware datastore driver can import oslo.vmware.

Mirrors ``glance_store._drivers.vmware_datastore.Store.configure()`` (5.7):
without ``oslo_vmware`` it raises BadStoreConfiguration outside
``configure_add`` and Glance fails to start; ``vmware_server_host``,
``vmware_server_username``, ``vmware_server_password`` and
``vmware_datastores`` must be set; ``vmware_ca_file`` must be readable by the
service user. No vCenter runs here: ``--deep`` only opens a TCP connection
to the server's HTTPS port, it never logs in.
"""

from __future__ import annotations

from glance_features.catalog import Entry, GlanceUse
from glance_features.detector import ProbeContext
from glance_features.detectors import _backends, _stores
from glance_features.model import JSON, Status, Verdict
from glance_features.options import STORE_SELECTION
from glance_features.runas import checked_as

DRIVER = "vmware"
# What vmware_datastore.py imports (try/except ImportError, l.27-31).
MODULES = (
    "oslo_vmware.api",
    "oslo_vmware.exceptions",
    "oslo_vmware.objects.datacenter",
    "oslo_vmware.objects.datastore",
    "oslo_vmware.vim_util",
)
REQUIRED = (
    "vmware_server_host",
    "vmware_server_username",
    "vmware_server_password",
    "vmware_datastores",
)

CATALOG = Entry(
    purpose=(
        "glance_store's vmware driver keeps image data on a vSphere datastore through "
        "oslo.vmware, which neither Glance nor glance_store installs (extra 'vmware')."
    ),
    options=STORE_SELECTION,
    required_when=_backends.required_when(DRIVER),
    python=("oslo.vmware>=3.6.0",),
    packages={"debian": "python3-oslo.vmware", "rhel": "python3-oslo-vmware"},
    verify=("glance-features --feature store-vmware",),
    glance=GlanceUse("glance_store/_drivers/vmware_datastore.py: Store.configure()"),
    secrets=("vmware_server_password",),
)


class StoreVmwareDetector(_stores.StoreDetector):
    name = "store-vmware"
    summary = "glance_store vmware backends: oslo.vmware importable, options set"
    catalog = CATALOG
    driver = DRIVER
    modules = MODULES
    without_modules = _stores.FAILS_TO_START
    file_options = ("vmware_ca_file",)

    def judge(
        self, backend: _backends.Backend, found: _stores.Found, context: ProbeContext
    ) -> Verdict:
        settings = context.settings
        user = checked_as(context)
        values = {n: backend.get(settings, n) for n in REQUIRED}
        ca_file = backend.get(settings, "vmware_ca_file")
        host = str(values["vmware_server_host"] or "")
        details: dict[str, JSON] = {"vmware_server_host": host}
        unset = [n for n in REQUIRED if not values[n]]
        if unset:
            # host, user and password are read in configure(), the datastores
            # in configure_add(), whose error only disables adding images.
            effect = (
                _stores.FAILS_TO_START
                if unset != ["vmware_datastores"]
                else "glance_store disables adding images"
            )
            return Verdict(
                Status.UNAVAILABLE,
                f"{', '.join(backend.label(n) for n in unset)} not set: {effect}",
                details,
                [f"set {backend.label(n)}" for n in unset],
            )
        if ca_file:
            bad = _stores.unreadable_file(
                found, str(ca_file), user, "vmware_ca_file", "TLS to vCenter fails"
            )
            if bad is not None:
                return bad
        if context.deep:
            why = _stores.tcp_reach(host, 443, context)
            if why is not None:
                return Verdict(
                    Status.UNAVAILABLE,
                    f"{host}:443 does not accept connections ({why})",
                    details,
                    [f"check {backend.label('vmware_server_host')}"],
                )
        return Verdict(
            Status.AVAILABLE,
            f"oslo.vmware imports and the options are set (server {host}); the login "
            "itself is not tried",
            details,
        )
