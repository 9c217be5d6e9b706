"""The code under test: a service that converts images only when it can."""

import glance_features


def conversion_plan(disk_format: str) -> str:
    if not glance_features.probe().available("qemu-img"):
        return "store as uploaded"
    return f"convert {disk_format} to raw"
