"""image_decompression: the import plugin's optional LHA support.

Glance's ``glance/async_/flows/plugins/image_decompression.py`` (since 20.0.0)
handles zip and gzip with the standard library and LHA archives only when
``lhafile`` imports (``NO_LHA`` otherwise, and an LHA image fails its import
task with "No lhafile available."). No Glance release lists lhafile as a
requirement or extra. The check imports the modules as the service user with
the service's interpreter.
"""

from __future__ import annotations

from glance_features import checks, runas
from glance_features.catalog import Entry, GlanceUse, RequiredWhen
from glance_features.detector import DetectorBase, ProbeContext, result
from glance_features.detectors import _stores
from glance_features.errors import ConfigError
from glance_features.model import JSON, FeatureResult, Status
from glance_features.options import IMPORT_PLUGINS as PLUGINS
from glance_features.remediation import pip_install
from glance_features.runas import checked_as

PLUGIN = "image_decompression"
MODULES = ("zipfile", "gzip", "lhafile")

CATALOG = Entry(
    purpose=(
        "The image_decompression import plugin unpacks zip, gzip and LHA images during "
        "interoperable image import; LHA needs the lhafile module, which Glance does not "
        "install."
    ),
    options=(PLUGINS,),
    required_when=(
        RequiredWhen(
            "[image_import_opts] image_import_plugins includes image_decompression",
            lambda s: PLUGIN in (s.get(PLUGINS) or ()),
        ),
    ),
    python=("lhafile",),
    verify=("glance-features --feature image_decompression",),
    glance=GlanceUse(
        "glance/async_/flows/plugins/image_decompression.py: _DecompressImage.execute()",
        versions=">=20.0.0",
        unused="Glance before 20.0.0 has no image_decompression plugin",
    ),
)


# Which releases' plugin fails every zip and LHA import, whatever is installed:
# _zipfile extracts into the destination path as a directory (os.replace then
# raises NotADirectoryError) and _lhafile uses lhafile.LhaFile as a context
# manager, which it is not. 32.0.0 fixed both. Measured on 29.2.1, 30.2.0 and
# 31.1.0 (zip), and read in each release's code (LHA): tests/test_releases.py;
# 28.2.0-33 run through the plugin's own _zipfile: tests/test_release_cases.py.
BROKEN_ARCHIVES = "<32.0.0"


def _broken_archives(glance_version: str | None) -> str | None:
    if glance_version is None:
        return None
    from glance_features.catalog import GlanceUse

    if not GlanceUse("", versions=BROKEN_ARCHIVES).used_by(glance_version):
        return None
    return (
        "its _zipfile extracts into the destination as a directory (NotADirectoryError) "
        "and its _lhafile uses lhafile.LhaFile as a context manager, which it is not"
    )


def _archives_fix(python: checks.PythonFound, version: str | None) -> str:
    """What the operator can do about a plugin that fails zip and LHA. A
    distribution's Glance (its own interpreter, no virtualenv) comes from its
    packages, not from a Glance release the archive may not have."""
    if _distribution_python(python):
        return (
            "compress images with gzip before importing them (gzip -c IMAGE > IMAGE.gz): "
            f"this distribution's Glance {version} decompresses only gzip"
        )
    return "upgrade Glance to 32.0.0 or later (its image_decompression plugin fixed both)"


def _distribution_python(python: checks.PythonFound) -> bool:
    """The distribution's own interpreter (no virtualenv): pip refuses it
    (PEP 668's EXTERNALLY-MANAGED) and its packages come from the distribution."""
    executable = str(python.get("executable") or "")
    return python.get("venv") is False and executable.startswith(("/usr/bin/", "/bin/"))


def _lhafile_fix(python: checks.PythonFound) -> str:
    if _distribution_python(python):
        # No distribution packages lhafile (Debian, Ubuntu, RHEL): on its
        # Python the fix is the other archive format the plugin reads.
        return (
            "recompress LHA images with gzip before importing them: no package of this "
            "distribution provides lhafile for its Python"
        )
    return pip_install("lhafile", str(python["executable"]))


class ImageDecompressionDetector(DetectorBase):
    name = "image_decompression"
    summary = "the image_decompression import plugin: zip, gzip and (with lhafile) LHA"
    catalog = CATALOG

    def probe(self, context: ProbeContext) -> FeatureResult:
        try:
            enabled = PLUGIN in (context.settings.get(PLUGINS) or ())
        except ConfigError as exc:
            return result(self.name, Status.UNAVAILABLE, str(exc), {})
        user = checked_as(context)
        try:
            found = _stores.find(context, MODULES, locate_only=not enabled)
        except runas.CheckFailed as exc:
            return _stores.unknown(self.name, str(exc), {"checked_as": user})
        formats = [
            f
            for f, m in (("zip", "zipfile"), ("gzip", "gzip"))
            if found.modules[m]["failure"] is None
        ]
        details: dict[str, JSON] = {
            "checked_as": user,
            "enabled": enabled,
            **_stores.python_details(found),
            "formats": formats,
        }
        broken = _broken_archives(context.glance_version)
        if broken is not None:
            details["formats"] = ["gzip"]
            return result(
                self.name,
                Status.DEGRADED,
                f"gzip images are decompressed; zip and LHA images fail their import task "
                f"in Glance {context.glance_version}: {broken}",
                details,
                [_archives_fix(found.python, context.glance_version)],
            )
        missing = found.missing(("zipfile", "gzip"))
        if missing:
            return result(
                self.name,
                Status.UNAVAILABLE,
                f"{', '.join(missing)} cannot be imported by {found.where}: the plugin cannot load",
                details,
                ["reinstall the Python that runs Glance (its standard library is incomplete)"],
            )
        lha = found.modules["lhafile"]
        if lha["failure"] is not None:
            return result(
                self.name,
                Status.DEGRADED,
                "zip and gzip images are decompressed; LHA images fail their import task "
                f'("No lhafile available."): lhafile cannot be imported by '
                f"{found.where}",
                details,
                [_lhafile_fix(found.python)],
            )
        details["formats"] = [*formats, "lha"]
        return result(
            self.name,
            Status.AVAILABLE,
            f"zip, gzip and LHA images are decompressed (lhafile at {lha['file']})",
            details,
        )
