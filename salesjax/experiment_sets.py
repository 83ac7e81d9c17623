"""Named experiment sets (experiments/<name>.yaml) as `dvc exp run -S key=value` overrides.

A set is a YAML mapping of overrides of params.yaml; an optional top-level `grid:` mapping holds,
per parameter, the list of values to sweep. Each override becomes one `-S key=value` pair (nested keys
joined with dots); a grid dimension becomes `-S key=a,b`, DVC's sweep syntax, whose Cartesian product
`dvc exp run --queue` queues as one experiment per grid point. The pairs are printed without shell
quotes so that `dvc exp run $(salesjax experiment NAME)` works: lists are written without spaces, and
a value that would need quoting is refused.
"""

import re

from salesjax.config import _read_yaml, experiment_path
from salesjax.errors import SalesjaxError

GRID = "grid"
# Characters Hydra (which parses DVC's -S values) accepts in an unquoted value, shell-safe as well.
PLAIN = re.compile(r"[A-Za-z0-9_/.+%@-]+")
# Strings Hydra would read as another type: they are passed in single quotes (kept by the shell's
# word splitting, removed by Hydra), so that a string stays a string.
NOT_STRING = re.compile(r"null|true|false|[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", re.IGNORECASE)


def flatten(mapping: dict, prefix: str = "") -> dict[str, object]:
    """{"a.b": value} for every leaf of a nested mapping (lists are leaves)."""
    out = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        out |= flatten(value, f"{name}.") if isinstance(value, dict) else {name: value}
    return out


def render(value: object, where: str) -> str:
    """One value in the Hydra override syntax, with no character the shell would split or expand."""
    if isinstance(value, list):
        return "[" + ",".join(render(v, where) for v in value) + "]"
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if not PLAIN.fullmatch(text):
        raise SalesjaxError(f"experiment value {where}={text!r} cannot be passed unquoted; quote it by hand")
    return f"'{text}'" if NOT_STRING.fullmatch(text) else text


def read_set(name: str) -> tuple[dict[str, object], dict[str, list]]:
    """(overrides, grid) of experiments/<name>.yaml, each flattened to dotted keys."""
    path = experiment_path(name)
    if not path.exists():
        raise SalesjaxError(f"no experiment set '{name}' ({path} does not exist)")
    raw = _read_yaml(path) or {}
    if not isinstance(raw, dict) or not isinstance(raw.get(GRID, {}), dict):
        raise SalesjaxError(f"experiment set {path} must be a mapping (with `{GRID}:` a mapping too)")
    grid = flatten(raw.pop(GRID, None) or {})
    if bad := [k for k, v in grid.items() if not isinstance(v, list) or not v]:
        raise SalesjaxError(f"experiment set {path}: grid.{bad[0]} must be a non-empty list of values")
    return flatten(raw), grid


def overrides(name: str) -> list[str]:
    """`-S key=value` arguments of a named set: its overrides, then its grid dimensions as `key=a,b`."""
    fixed, grid = read_set(name)
    pairs = [f"{k}={render(v, k)}" for k, v in fixed.items()]
    pairs += [f"{k}={','.join(render(v, k) for v in values)}" for k, values in grid.items()]
    return [arg for pair in pairs for arg in ("-S", pair)]
