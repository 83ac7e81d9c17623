"""Numbers shaped into Markdown: formatted values and pipe tables with the best values in bold."""

import numpy as np

METRICS = {  # column title, number format, how "best" is judged
    "mae": ("MAE", "azn", "min"),
    "rmse": ("RMSE", "azn", "min"),
    "mase": ("MASE", "ratio", "min"),
    "wape": ("WAPE", "ratio", "min"),
    "smape": ("sMAPE %", "2dp", "min"),
    "bias": ("bias", "azn", "zero"),
    "pinball": ("pinball", "azn", "min"),
    "relative_bias": ("relative bias", "share", "zero"),
    "crps_scaled": ("scaled CRPS", "ratio", "min"),
    "coverage_50": ("coverage 50%", "ratio", "0.5"),
    "coverage_80": ("coverage 80%", "ratio", "0.8"),
    "coverage_90": ("coverage 90%", "ratio", "0.9"),
}


def fmt(value, kind: str = "ratio") -> str:
    """A number for the report: AZN with thousands separators, ratios to 3 decimals, '–' when missing."""
    if value is None or not np.isfinite(value):
        return "–"
    if kind == "mazn":
        return f"{value / 1e6:,.3f}"
    formats = {"azn": "{:,.0f}", "ratio": "{:.3f}", "2dp": "{:.2f}", "int": "{:,.0f}", "share": "{:.1%}"}
    return formats[kind].format(value)


def _cell(text: str) -> str:
    """A table cell with pipes escaped."""
    return str(text).replace("|", "\\|")


def table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    """A pipe table; `align` has one 'l' or 'r' per column (default: the first left, the others right)."""
    align = align or "l" + "r" * (len(header) - 1)
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|")
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _badness(metric: str, value: float) -> float:
    """How far a metric value is from ideal: the value, |bias|, or |coverage - nominal|."""
    rule = METRICS[metric][2]
    if rule == "min":
        return value
    return abs(value) if rule == "zero" else abs(value - float(rule))


def marked(values: list[float], metric: str) -> list[str]:
    """Formatted values with the best ones in bold."""
    finite = [_badness(metric, v) for v in values if v is not None and np.isfinite(v)]
    best = min(finite) if finite else None
    out = []
    for v in values:
        text = fmt(v, METRICS[metric][1])
        is_best = best is not None and v is not None and np.isfinite(v) and _badness(metric, v) == best
        out.append(f"**{text}**" if is_best else text)
    return out


def marked_table(first: str, names: list[str], columns: list[tuple[str, str, list[float]]]) -> list[str]:
    """A table of one row per name and one column (title, metric, values) each, best values bold."""
    cells = [marked(values, metric) for _, metric, values in columns]
    rows = [[name] + [c[i] for c in cells] for i, name in enumerate(names)]
    return table([first] + [title for title, _, _ in columns], rows)
