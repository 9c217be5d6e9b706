"""``glance-features status``: Glance's own upgrade checks plus ours, printed
and scored by oslo.upgradecheck as ``glance-status upgrade check`` does.

Glance 33's ``glance-status upgrade check`` stops with ``NoSuchOptError`` on a
plain host: its checks read options (``enabled_backends``) that nothing in
that command registers. Here Glance's service modules are imported first, so
its options are registered as in the API service, and the configuration is
the API service's own (``OS_GLANCE_CONFIG_DIR``, else ``/etc/glance``), not
the ``glance.conf``/``glance-status.conf`` that ``glance-status`` looks for.
Exit status is oslo.upgradecheck's: 0 success, 1 warning, 2 failure, 255 a
check crashed.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from glance_features.errors import GlanceFeaturesError

if TYPE_CHECKING:
    from collections.abc import Callable

    from oslo_upgradecheck.upgradecheck import Result, UpgradeCommands

    from glance_features.cli.census import Subcommands

PROJECT = "glance"


def add_parser(commands: Subcommands) -> argparse.ArgumentParser:
    """The subcommand's parser; the caller adds the config and user options
    every command shares."""
    status: argparse.ArgumentParser = commands.add_parser(
        "status",
        help="Glance's own upgrade checks plus one per feature, as glance-status prints them",
        description="Run Glance's upgrade checks (glance-status upgrade check) with "
        "Glance's options registered, plus one check per feature, on the Glance API "
        "service's configuration. Exit status: 0 success, 1 warning, 2 failure, "
        "64 bad invocation or configuration, 255 a check crashed.",
    )
    status.add_argument("--json", action="store_true", help="oslo.upgradecheck's JSON output")
    return status


class StatusError(GlanceFeaturesError):
    """Cannot run the checks at all: one line, exit 64."""


def run(args: argparse.Namespace, user: str | None) -> int:
    try:
        from oslo_config import cfg
        from oslo_upgradecheck import upgradecheck
    except ImportError as exc:
        raise StatusError(
            f"status needs oslo.config and oslo.upgradecheck ({exc}); run it from Glance's "
            "environment: Glance's virtualenv, or for a distribution's Glance a virtualenv "
            "made with /usr/bin/python3 -m venv --system-site-packages"
        ) from None
    from glance_features import upgradecheck as features

    base, missing = _glance_checks()
    conf = cfg.CONF
    ours = features.checks(conf=conf, user=user)

    class Checks(base):  # type: ignore[misc,valid-type]
        _upgrade_checks = (*getattr(base, "_upgrade_checks", ()), *missing, *ours)

    # oslo.config's own options first: after the subcommand they are its arguments.
    argv = []
    explicit = args.config_file is not None or args.config_dir is not None
    for path in args.config_file or ():
        argv += ["--config-file", path]
    if args.config_dir is not None:
        argv += ["--config-dir", args.config_dir]
    argv += ["upgrade", "check", *(["--json"] if args.json else [])]
    # upgradecheck.main(), but with the API service's prog, so oslo.config also
    # reads the glance-api.conf.d directories the service reads.
    upgradecheck.register_cli_options(conf, Checks())
    try:
        conf(
            args=argv,
            project=PROJECT,
            prog="glance-api",
            default_config_files=[] if explicit else _service_files(),
        )
    except (cfg.ConfigFilesNotFoundError, cfg.ConfigDirNotFoundError) as exc:
        raise StatusError(str(exc)) from None
    except cfg.Error as exc:
        raise StatusError(f"cannot read the configuration: {exc}") from None
    except SystemExit:
        # argparse inside oslo.config has printed its usage line; its status 2
        # would read as oslo.upgradecheck's "failure".
        raise StatusError("oslo.config rejected the arguments (see above)") from None
    upgradecheck.CONF = conf  # where check() looks for --json, as main() sets it
    import contextlib

    from glance_features.cli.streams import report_stream

    # oslo.upgradecheck prints; stdout itself carries only what plugins print.
    with contextlib.redirect_stdout(report_stream()):
        code: int = upgradecheck.run(conf)
    return code


def _glance_checks() -> tuple[
    type[UpgradeCommands], tuple[tuple[str, Callable[[UpgradeCommands], Result]], ...]
]:
    """Glance's ``Checks`` with its options registered, or a stand-in saying why not."""
    from oslo_upgradecheck import upgradecheck

    try:
        # The API service's modules, for their option registrations (wsgi_app
        # registers enabled_backends, the profiler and image cache groups).
        import glance.common.config
        import glance.common.wsgi_app  # noqa: F401
        from glance.cmd.status import Checks
    except ImportError as error:
        import sys

        exc = error

        def not_run(_self: UpgradeCommands) -> Result:
            return upgradecheck.Result(
                upgradecheck.Code.WARNING,
                f"not run: Glance is not importable by {sys.executable} ({exc}); "
                "install glance-features into Glance's environment",
            )

        return upgradecheck.UpgradeCommands, (("Glance's own checks", not_run),)
    return Checks, ()


def _service_files() -> list[str]:
    # The API service's own list (glance.common.wsgi_app._get_config_files) when
    # Glance is importable; else our reading of the same rule.
    try:
        from glance.common import wsgi_app

        return list(wsgi_app._get_config_files())
    except (ImportError, AttributeError):
        from glance_features.settings import service_config_files

        return service_config_files()
