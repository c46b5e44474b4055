"""Config fields that know their help, check and choices: one definition for the dataclass, its
validation and its command-line flag.

    steps: int = option(150, "optimizer steps", check=at_least(1))

`validate(config)` (called from `__post_init__`) runs every field's check once; `add_options`
turns a dataclass's fields into argparse flags whose type runs the same check (so a bad value is
reported as `argument --steps: must be >= 1`); `from_args` builds the dataclass back from the
parsed namespace. Checks never touch the filesystem: paths are checked where they are used.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["option", "validate", "at_least", "above", "one_of", "in_range", "each",
           "add_options", "from_args", "flag_type", "existing_file", "model_path", "Check",
           "dtype_field"]

Check = Callable[[Any], str | None]  # value -> error message, or None when fine


def option(default: Any = dataclasses.MISSING, help: str = "", *, check: Check | None = None,
           choices: Iterable[str] | None = None, factory: Callable[[], Any] | None = None,
           parse: Callable[[str], Any] | None = None, metavar: str | None = None) -> Any:
    """A dataclass field with its help text, check, choices and (for flags) a string parser."""
    meta = {"help": help, "check": check, "choices": tuple(choices) if choices else None,
            "parse": parse, "metavar": metavar}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# ---------------------------------------------------------------- checks

def at_least(minimum: float) -> Check:
    return lambda v: None if v is None or v >= minimum else f"must be >= {minimum}, got {v}"


def above(minimum: float) -> Check:
    return lambda v: None if v is None or v > minimum else f"must be > {minimum:g}, got {v}"


def in_range(low: float, high: float) -> Check:
    """low <= v < high."""
    return lambda v: None if low <= v < high else f"must be in [{low}, {high}), got {v}"


def one_of(choices: Iterable[str]) -> Check:
    choices = tuple(choices)
    return lambda v: None if v in choices else f"must be one of {choices}, got {v!r}"


def each(check: Check) -> Check:
    """The check applied to every item of a tuple value."""
    def run(values) -> str | None:
        for v in values:
            msg = check(v)
            if msg:
                return msg
        return None

    return run


def _field_check(f: dataclasses.Field) -> Check | None:
    check = f.metadata.get("check")
    if check is None and f.metadata.get("choices"):
        check = one_of(f.metadata["choices"])
    return check


def validate(config) -> None:
    """Run every field's check on its value; ValueError `"<field> must ..."` on the first miss."""
    for f in dataclasses.fields(config):
        check = _field_check(f)
        if check is not None:
            msg = check(getattr(config, f.name))
            if msg:
                raise ValueError(f"{f.name} {msg}")


# ---------------------------------------------------------------- command line

def _base_type(tp) -> tuple[type, bool]:
    """(scalar type, is_tuple) of an annotation like `int`, `float | None`, `tuple[float, ...]`."""
    if isinstance(tp, str):
        raise TypeError(f"unresolved annotation {tp!r}")
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        return typing.get_args(tp)[0], True
    if origin is not None:  # Union / Optional
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0])
    return tp, False


def add_options(parser, cls, *, prefix: str = "", only: Iterable[str] | None = None,
                flags: Mapping[str, str] | None = None,
                defaults: Mapping[str, Any] | None = None, dest_prefix: str = "") -> None:
    """Add one flag per field of dataclass `cls` (fields in `only`, in that order, if given).

    Flag name: `--{prefix}{field-name}` unless `flags` maps the field to another flag. A bool
    field becomes a switch; a tuple field an appendable flag (`--alpha 5 --alpha 2`). Defaults
    come from the dataclass (or `defaults`); the parsed value lands in `{dest_prefix}{field}`.
    """
    hints = typing.get_type_hints(cls)
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    names = list(only) if only is not None else list(by_name)
    flags, defaults = dict(flags or {}), dict(defaults or {})
    for name in names:
        f = by_name[name]
        flag = flags.get(name) or f"--{prefix}{name.replace('_', '-')}"
        scalar, many = _base_type(hints[name])
        default = defaults.get(name, _default(f))
        kwargs: dict[str, Any] = {"dest": dest_prefix + name, "help": f.metadata.get("help")}
        if scalar is bool:
            parser.add_argument(flag, action="store_true", default=bool(default), **kwargs)
            continue
        check = _field_check(f)
        parse = f.metadata.get("parse") or scalar
        kwargs["type"] = _converter(parse, check, many, flag)
        if f.metadata.get("choices"):
            kwargs["choices"] = f.metadata["choices"]
            kwargs["type"] = str
        else:
            kwargs["metavar"] = f.metadata.get("metavar") or flag.lstrip("-").upper()
        if default not in (None, dataclasses.MISSING) and not many:
            kwargs["help"] = f"{kwargs['help']} (default: {default})"
        elif many and default not in (None, dataclasses.MISSING):
            kwargs["help"] = f"{kwargs['help']} (default: {' '.join(map(str, default))})"
        if many:
            kwargs["action"] = "append"
            kwargs["default"] = None  # from_args falls back to the dataclass default
        elif default is dataclasses.MISSING:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
        parser.add_argument(flag, **kwargs)


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def flag_type(parse: Callable[[str], Any], check: Check | None = None) -> Callable[[str], Any]:
    """An argparse `type` for a flag that is no config field: parse, then check."""
    return _converter(parse, check, False, getattr(parse, "__name__", "value"))


def _converter(parse: Callable[[str], Any], check: Check | None, many: bool, flag: str):
    def convert(text: str):
        try:
            value = parse(text)
        except argparse.ArgumentTypeError:
            raise
        except (TypeError, ValueError):
            kind = getattr(parse, "__name__", "value")
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        msg = check((value,) if many else value) if check is not None else None
        if msg:
            raise argparse.ArgumentTypeError(msg)
        return value

    convert.__name__ = flag.lstrip("-")
    return convert


def from_args(cls, args: argparse.Namespace, *, dest_prefix: str = "", **overrides):
    """`cls(**fields)` from the namespace: every field `add_options` added (same `dest_prefix`),
    dataclass defaults for the others and for appendable flags never given, then `overrides`."""
    values = {}
    for f in dataclasses.fields(cls):
        dest = dest_prefix + f.name
        if hasattr(args, dest) and getattr(args, dest) is not None:
            value = getattr(args, dest)
            values[f.name] = tuple(value) if isinstance(value, list) else value
    values.update(overrides)
    return cls(**values)


# ---------------------------------------------------------------- fields several configs share

def block_size_field(default: int = 512, minimum: int = 2) -> Any:
    return option(default, "tokens per block", check=at_least(minimum))


def seed_field() -> Any:
    return option(0, "seed (data order, choices of translations, LoRA init)")


def device_field(default: str | None = "cpu") -> Any:
    return option(default, "cpu or cuda (never guessed)")


def dtype_field(default: str = "float32", help: str = "weights dtype") -> Any:
    """The weights dtype of a loaded model: one of `unlearn.models.DTYPES`."""
    from unlearn.models import DTYPES

    return option(default, f"{help} (bfloat16: faster on CPUs and GPUs with bf16 support; "
                  "speed and effect in docs/APP.md#performance)",
                  choices=DTYPES)


def text_format_field(default: str = "text", auto: bool = False) -> Any:
    from unlearn.data import TEXT_FORMATS

    choices = (("auto",) if auto else ()) + TEXT_FORMATS
    return option(default, "how the text becomes tokens: one stream, or blank-line-separated "
                  "paragraphs as <s>...</s> documents" + (" (auto: what the model folder's "
                  "text_format.json says, else text)" if auto else ""), choices=choices)


def existing_file(value: str) -> str:
    """A flag parser: `value` if it names a file (a clear argparse error otherwise)."""
    from pathlib import Path

    if not Path(value).is_file():
        raise argparse.ArgumentTypeError(f"file not found: {value}")
    return value


def model_path(value: str) -> str:
    """A flag parser: a local model folder (must hold config.json) or a hub id like org/name."""
    from pathlib import Path

    path = Path(value).expanduser()
    if path.exists() or value.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            raise argparse.ArgumentTypeError(f"not a model folder (no config.json): {value}")
        return str(path)
    if value.count("/") != 1:
        raise argparse.ArgumentTypeError(f"model folder not found: {value}")
    return value
