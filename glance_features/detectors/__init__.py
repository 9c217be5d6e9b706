"""The built-in detectors, one module each; registered here, in code."""

BUILTIN = {
    "qemu-img": "glance_features.detectors.qemu_img:QemuImgDetector",
    "sendfile": "glance_features.detectors.sendfile:SendfileDetector",
    "pydev": "glance_features.detectors.pydev:PydevDetector",
    "xattr": "glance_features.detectors.xattr:XattrDetector",
    "dnspython-ipv6": "glance_features.detectors.dnspython_ipv6:DnspythonIpv6Detector",
    "store-file": "glance_features.detectors.store_file:StoreFileDetector",
    "store-s3": "glance_features.detectors.store_s3:StoreS3Detector",
    "store-rbd": "glance_features.detectors.store_rbd:StoreRbdDetector",
    "store-swift": "glance_features.detectors.store_swift:StoreSwiftDetector",
    "store-cinder": "glance_features.detectors.store_cinder:StoreCinderDetector",
    "store-vmware": "glance_features.detectors.store_vmware:StoreVmwareDetector",
    "image_decompression": (
        "glance_features.detectors.image_decompression:ImageDecompressionDetector"
    ),
}
