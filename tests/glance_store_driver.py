"""Configure glance_store's own drivers from a Glance config file, as Glance 33 does.

Executed by the interpreter of a virtualenv where Glance is installed (see
tests/test_stores.py), never imported by the test suite. Mirrors
glance.common.wsgi_app.init_app(): register_store_opts + create_multi_stores
with Glance's reserved stores, or register_opts + create_stores in legacy
mode. Prints one JSON object: per backend, whether the driver loaded, whether
it kept its write capability (glance_store disables ``add`` when
``configure_add`` raises BadStoreConfiguration), the warnings it logged, and,
for backends named after ``add:``, what ``Store.add()`` of a small image did.

Usage: python glance_store_driver.py CONFIG_FILE [add:BACKEND ...]
"""

import importlib
import io
import json
import logging
import sys
import uuid
import warnings

warnings.simplefilter("ignore")

# Imported by name: this script runs in Glance's venv, which mypy never sees.
importlib.import_module("glance.common.config")  # registers enabled_backends as Glance does
glance_store = importlib.import_module("glance_store")
capabilities = importlib.import_module("glance_store.capabilities")
location = importlib.import_module("glance_store.location")
from oslo_config import cfg  # noqa: E402

# glance.common.wsgi_app.RESERVED_STORES (importing wsgi_app loads the whole API).
RESERVED_STORES = {"os_glance_staging_store": "file", "os_glance_tasks_store": "file"}


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def main() -> None:
    config_file = sys.argv[1]
    adds = [a.split(":", 1)[1] for a in sys.argv[2:] if a.startswith("add:")]
    collect = Collect()
    logging.getLogger().addHandler(collect)
    logging.getLogger().setLevel(logging.WARNING)
    conf = cfg.CONF
    conf([], project="glance", default_config_files=[config_file])
    stores: dict[str, object] = {}
    if conf.enabled_backends:
        backends = dict(conf.enabled_backends)
        glance_store.register_store_opts(conf, reserved_stores=RESERVED_STORES)
        try:
            glance_store.create_multi_stores(conf, reserved_stores=RESERVED_STORES)
        except Exception as exc:  # init_app() does not catch it: Glance fails to start
            print(json.dumps({"startup_error": f"{type(exc).__name__}: {exc}"}))
            return
        for scheme_map in location.SCHEME_TO_CLS_BACKEND_MAP.values():
            for backend, info in scheme_map.items():
                stores[backend] = info["store"]
        names = [*backends, *RESERVED_STORES]
    else:
        glance_store.register_opts(conf)
        try:
            glance_store.create_stores(conf)
        except Exception as exc:
            print(json.dumps({"startup_error": f"{type(exc).__name__}: {exc}"}))
            return
        for info in location.SCHEME_TO_CLS_MAP.values():
            store = info["store"]
            stores[type(store).__module__.rsplit(".", 1)[-1]] = store
        names = list(stores)
    out: dict[str, object] = {"messages": collect.messages, "backends": {}}
    for name in names:
        store = stores.get(name)
        entry: dict[str, object] = {"loaded": store is not None}
        if store is not None:
            entry["write"] = store.is_capable(capabilities.BitMasks.WRITE_ACCESS)  # type: ignore[attr-defined]
            # What the rbd driver will hand librados (rados_id, conffile).
            for attr in ("user", "conf_file"):
                if isinstance(getattr(store, attr, None), str):
                    entry[attr] = getattr(store, attr)
        if name in adds and store is not None:
            entry["add"] = _add(store)
        out["backends"][name] = entry  # type: ignore[index]
    print(json.dumps(out))


def _add(store: object) -> dict[str, object]:
    data = b"glance-features" * 64
    try:
        loc, size, _, _, _ = store.add(  # type: ignore[attr-defined]
            str(uuid.uuid4()), io.BytesIO(data), len(data), "sha256"
        )
    except Exception as exc:  # the driver's own exception is the answer
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    try:
        store.delete(location.get_location_from_uri_and_backend(loc, store.backend_group))  # type: ignore[attr-defined]
    except Exception:
        pass
    return {"ok": True, "size": size}


main()
