"""The scripts' command line, checked before Hydra starts.

Hydra reports a wrong key or group option in several lines and exits 1, and it accepts any value of any type
(``data.window=abc``) until the code trips over it. :func:`check_command_line` composes the config the way
Hydra will (every value of a ``-m`` sweep in turn) and validates it against the schema (pricernn.config), so
each of these ends in one line and exit status 2 before anything runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pricernn.errors import UserError, exit_on_user_error, first_line, strip_debug_flag

# Hydra flags that print or complete instead of running, and those that take a value
INFO_FLAGS = {"-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info", "-sc", "--shell-completion"}
VALUE_FLAGS = {"-c", "--cfg", "-p", "--package", "-i", "--info", "-sc", "--shell-completion", "-cp", "-cn", "-cd"}
VALUE_FLAGS |= {"--config-path", "--config-name", "--config-dir", "--experimental-rerun"}


def prepare_command_line(config_name: str, conf_dir: str) -> None:
    """For a script's ``__main__``: turn ``--debug`` into PRICERNN_DEBUG and check the overrides in sys.argv."""
    strip_debug_flag()
    exit_on_user_error(check_command_line)(config_name, sys.argv[1:], conf_dir)


def check_command_line(config_name: str, args: Sequence[str], conf_dir: str) -> None:
    """Compose and validate the config of every run ``args`` asks for; raise a one-line UserError if any fails."""
    if any(a.split("=")[0] in INFO_FLAGS for a in args):
        return
    overrides = _overrides(args)
    for variant in _variants(overrides):
        validate_composed(config_name, variant, conf_dir)


def validate_composed(config_name: str, overrides: list[str], conf_dir: str) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException, MissingConfigException

    from pricernn.config import SCHEMAS, unknown_key_message, validate

    schema = SCHEMAS[config_name]
    try:
        with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
            cfg = compose(config_name, overrides=overrides)
    except MissingConfigException as err:
        raise UserError(_missing_option(err)) from None
    except HydraException as err:
        text = str(err)
        if text.startswith("Could not override '"):
            raise UserError(unknown_key_message(text.split("'")[1], schema)) from None
        raise UserError(first_line(err)) from None
    validate(cfg, schema)


def _overrides(args: Sequence[str]) -> list:
    """The key=value arguments, parsed by Hydra's own override grammar."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    texts, skip = [], False
    for arg in args:
        if skip or arg.startswith("-"):
            skip = arg in VALUE_FLAGS
            continue
        texts.append(arg)
    parser, parsed = OverridesParser.create(), []
    for text in texts:
        try:
            parsed += parser.parse_overrides([text])
        except OverrideParseException as err:
            raise UserError(f"{text}: not a valid override ({first_line(err)})") from None
    return parsed


def _variants(overrides: list) -> list[list[str]]:
    """One list of plain overrides per value of each sweep (the others at their first value): every swept value
    is composed once, without running the whole grid. Interval sweeps (Optuna) cannot be listed and are left
    to the sweeper; hydra.* keys are Hydra's to check."""
    choices = []
    for o in overrides:
        key = o.get_key_element()
        if not o.is_sweep_override():
            choices.append([o.input_line])
        elif o.key_or_group.startswith("hydra") or o.is_interval_sweep():
            choices.append([])
        else:
            choices.append([f"{key}={v}" for v in o.sweep_string_iterator()])
    base = [c[0] for c in choices if c]
    variants = [base]
    for i, values in enumerate(choices):
        for value in values[1:]:
            variant = [c[0] for c in choices[:i] if c] + [value] + [c[0] for c in choices[i + 1 :] if c]
            variants.append(variant)
    return variants


def _missing_option(err: Exception) -> str:
    """Hydra's "Could not find 'model/transformer'" and its list of options, in one line."""
    lines = str(err).splitlines()
    options = [line.strip() for line in lines if line.startswith("\t") and "provider=" not in line]
    group = next((line.split("'")[1] for line in lines if line.startswith("Available options in")), "")
    wanted = lines[0].split("Could not find ")[-1].strip("'")
    if group and options:
        return f"{group}={wanted.split('/')[-1]}: no such option; choose one of: {', '.join(options)}"
    return lines[0]
