"""The scripts' command line, checked before Hydra starts.

Hydra reports a wrong key or group option in several lines and exits 1, and it accepts any value of any type
(``data.window=abc``) until the code trips over it. :func:`check_command_line` composes the config the way
Hydra will (every value of a ``-m`` sweep in turn) and validates it against the schema (pricernn.config.validate), so
each of these ends in one line and exit status 2 before anything runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from pricernn.config.validate import SCHEMAS
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
    """Compose and validate the config of every run ``args`` asks for; raise a one-line UserError if any fails.

    ``--config-name``/``-cn`` picks another primary config (checked against its own schema, the script's
    otherwise), ``--config-dir``/``-cd`` adds a folder of the user's configs to the search path, as Hydra does;
    ``--config-path`` moves the configs elsewhere altogether, and is left to Hydra."""
    flags = _flag_values(args)
    if any(a.split("=")[0] in INFO_FLAGS for a in args) or "-cp" in flags or "--config-path" in flags:
        return
    schema_name = config_name
    config_name = flags.get("-cn") or flags.get("--config-name") or config_name
    extra = flags.get("-cd") or flags.get("--config-dir")
    search = [f"hydra.searchpath=[file://{Path(extra).resolve()}]"] if extra else []
    for variant in _variants(_overrides(args)):
        validate_composed(config_name, [*search, *variant], conf_dir, SCHEMAS.get(config_name, SCHEMAS[schema_name]))


def validate_composed(config_name: str, overrides: list[str], conf_dir: str, schema: type) -> None:
    """Compose ``config_name`` with ``overrides`` as Hydra would and validate it against ``schema``."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import MissingConfigException

    from pricernn.config.validate import key_names, unknown_key_message, validate

    try:
        with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
            cfg = compose(config_name, overrides=overrides)
    except MissingConfigException as err:
        raise UserError(_missing_option(err)) from None
    except Exception as err:  # Hydra's and OmegaConf's many ways of refusing a command line
        text = str(err)
        if text.startswith("Could not override '"):
            key = text.split("'")[1]
            if key in key_names(schema):  # a key the schema knows that no config file sets: Hydra wants a '+'
                value = next((o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == key), "VALUE")
                raise UserError(f"{key} is not set by any config file: add it with +{key}={value}") from None
            raise UserError(unknown_key_message(key, schema)) from None
        raise UserError(f"cannot compose the config: {first_line(err)}") from None
    typed = validate(cfg, schema)
    if "data" in typed:  # names a file cannot decide: a frequency alias, an exchange calendar (pandas only, quick)
        from pricernn.data.calendar import check_options

        check_options(typed.data.get("freq"), typed.data.get("calendar"))


def _flag_values(args: Sequence[str]) -> dict[str, str]:
    """Hydra's flags that take a value, with their values (``-cn x`` or ``--config-name=x``)."""
    found = {}
    for i, arg in enumerate(args):
        name, has_value, value = arg.partition("=")
        if name in VALUE_FLAGS:
            found[name] = value if has_value else (args[i + 1] if i + 1 < len(args) else "")
    return found


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
    is composed once, without running the whole grid. Interval sweeps (Optuna) and globs (which need Hydra's
    config loader) are left to the sweeper; hydra.* keys are Hydra's to check."""
    from hydra.core.override_parser.types import ValueType

    choices = []
    for o in overrides:
        key = o.get_key_element()
        if not o.is_sweep_override():
            choices.append([o.input_line])
        elif o.key_or_group.startswith("hydra") or o.value_type in (
            ValueType.GLOB_CHOICE_SWEEP,
            ValueType.INTERVAL_SWEEP,
        ):
            choices.append([])  # values only the sweeper can list
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
