"""Run by a release venv's Python: what that Glance's own code does where the
probe keys a verdict on the release (JSON on stdout).

* ``client_sendfile``: whether Glance's HTTP client (``glance.common.client``)
  still has its sendfile path (``SENDFILE_SUPPORTED``, set when pysendfile
  imports; 29.0.0 removed the path).
* ``zip_result``: what the image_decompression plugin's own ``_zipfile``
  leaves at the destination it is given for a one-file zip ("file": the
  task's os.replace then works; "directory": it fails).
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import zipfile
from typing import Any


def _zip_result() -> str:
    from glance.async_.flows.plugins import image_decompression

    with tempfile.TemporaryDirectory() as work:
        src = os.path.join(work, "image")
        with zipfile.ZipFile(src, "w") as archive:
            archive.writestr("disk.raw", b"\0" * 512)
        dest = f"{src}.uc"  # as _DecompressImage.execute names it
        image_decompression._zipfile(src, dest, "image-id")
        return "directory" if os.path.isdir(dest) else "file" if os.path.isfile(dest) else "none"


def _client_sendfile() -> bool:
    if importlib.util.find_spec("glance.common.client") is None:
        return False
    from glance.common import client

    return hasattr(client, "SENDFILE_SUPPORTED")


def main() -> dict[str, Any]:
    return {
        "client_sendfile": _client_sendfile(),
        "zip_result": _zip_result(),
    }


if __name__ == "__main__":
    print(json.dumps(main()))
