"""The report stage on a tiny fake tree of stage outputs: tables, sentences, offline HTML, stable bytes."""

import ast
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_params

import salesjax.report
from salesjax import plots
from salesjax.config import parse_config
from salesjax.errors import SalesjaxError
from salesjax.report import inputs
from salesjax.report.figures import caption
from salesjax.report.frames import store_frames
from salesjax.report.html import to_html
from salesjax.report.opening import mase_sentence
from salesjax.report.stage import run_report
from salesjax.report.tables import marked
from salesjax.report.view import make_view

STORES = ["36", "108"]  # ids that look like numbers, as in the real data
CATEGORIES = ["TVs", "Irons"]
MONTHS = [str(m) for m in pd.period_range("2018-01", "2020-03", freq="M")]
TEST = MONTHS[-3:]
MODELS = ["lstm", "lstm_ensemble", "thesis", "naive", "seasonal_naive", "ets"]
WORLDS = ["observed", "counterfactual"]


def _panel(counterfactual: bool) -> pd.DataFrame:
    """The prepared long panel, series then month; the counterfactual is higher in the test months."""
    rows = []
    for i, (s, c) in enumerate((s, c) for s in STORES for c in CATEGORIES):
        for t, m in enumerate(MONTHS):
            value = 1000.0 * (i + 1) * (1 + 0.3 * np.sin(t))
            rows.append((s, c, m, value, True, value * (1.5 if m in TEST else 1.0)))
    frame = pd.DataFrame(
        rows, columns=["store", "category", "month", "observed", "available", "counterfactual"]
    )
    return frame if counterfactual else frame.drop(columns="counterfactual")


def _forecasts(panel: pd.DataFrame) -> pd.DataFrame:
    """One row per model x series x test month, as the evaluate stage writes it."""
    test = panel[panel["month"].isin(TEST)].reset_index(drop=True)
    test.insert(0, "series", test.index // len(TEST))
    frames = []
    for k, model in enumerate(MODELS):
        median = test["observed"] * (1.1 + 0.05 * k)
        low, high = (np.nan, np.nan) if model == "thesis" else (median * 0.8, median * 1.2)
        frames.append(
            test.drop(columns="available").assign(model=model, **{"q0.1": low, "q0.5": median, "q0.9": high})
        )
    return pd.concat(frames, ignore_index=True)


def _metrics(ensemble: float, best_baseline: float) -> dict:
    """One world's headline metrics with the MASE of lstm_ensemble and of seasonal_naive (best baseline)."""
    mase = {
        "lstm": 1.0,
        "lstm_ensemble": ensemble,
        "thesis": 1.05,
        "naive": 1.6,
        "seasonal_naive": best_baseline,
    }
    out = {}
    for k, model in enumerate(MODELS):
        row = {"mae": 100.0 + k, "rmse": 150.0 + k, "mase": mase.get(model, 1.2), "wape": 0.3 + k / 100}
        row |= {"smape": 30.0 + k, "bias": 10.0 - 3 * k}
        if model != "thesis":
            row |= {"pinball": 40.0 + k, "coverage_80": 0.5 + k / 20}
        out[model] = row
    return out


def _levels(metrics: dict) -> pd.DataFrame:
    """levels.csv: every level x model x world with the headline metrics."""
    rows = [
        {"level": level, "model": m, "target": w} | values
        for w, table in metrics.items()
        for level in ("total", "store", "category", "store_category")
        for m, values in table.items()
    ]
    return pd.DataFrame(rows)


def _series(worlds: list[str]) -> pd.DataFrame:
    """series.csv: per model and series MAE, RMSE and MASE, with store and category."""
    pairs = [(s, c) for s in STORES for c in CATEGORIES]
    rows = [
        {
            "model": m,
            "series": i,
            "mae": 10.0 * (i + 1) + k,
            "rmse": 20.0 * (i + 1) + k,
            "mase": 0.5 + 0.2 * i + k / 10,
        }
        | {"mase_scale": 5.0, "mase_rule": "seasonal_naive", "target": w, "store": s, "category": c}
        for w in worlds
        for k, m in enumerate(MODELS)
        for i, (s, c) in enumerate(pairs)
    ]
    return pd.DataFrame(rows)


def _gap() -> pd.DataFrame:
    """gap.csv for a panel with a counterfactual world."""
    names = {"total": ["company"], "store": STORES, "category": CATEGORIES}
    rows = [
        {
            "level": level,
            "name": n,
            "model": m,
            "observed": 1000.0 * (j + 1),
            "counterfactual": 1500.0 * (j + 1),
        }
        | {
            "forecast": 1200.0 * (j + 1),
            "gap": 500.0 * (j + 1),
            "predicted_gap": 200.0 * (j + 1),
            "share_predicted": 0.4,
        }
        for level, group in names.items()
        for j, n in enumerate(group)
        for m in MODELS
    ]
    return pd.DataFrame(rows)


def _write_json(obj: object, path) -> None:
    """Write a JSON file, making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def write_curves(live, fit: str, members: list[tuple[list[float], list[float]]]) -> None:
    """DVCLive's files of one fit in `live`: member_<k>/{train,val}_loss.tsv, one row per epoch (step)."""
    for k, losses in enumerate(members):
        for name, values in zip(("train_loss", "val_loss"), losses, strict=True):
            path = live / "plots" / "metrics" / fit / "validation" / f"member_{k}" / f"{name}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            steps = range(1, len(values) + 1)
            pd.DataFrame({"step": steps, name: values}).to_csv(path, sep="\t", index=False)


def write_tree(root, metrics: dict, counterfactual: bool = True) -> None:
    """The stage outputs the report reads, in their layout under `root`."""
    worlds = list(metrics)
    panel = _panel(counterfactual)
    (root / "artifacts" / "prepared").mkdir(parents=True)
    (root / "artifacts" / "evaluation").mkdir(parents=True)
    (root / "reports" / "evaluate").mkdir(parents=True)
    panel.to_parquet(root / "artifacts" / "prepared" / "panel.parquet", index=False)
    _forecasts(panel).to_parquet(root / "artifacts" / "evaluation" / "forecasts.parquet", index=False)
    _write_json(metrics, root / "reports" / "metrics.json")
    evaluation = root / "reports" / "evaluate"
    _levels(metrics).to_csv(evaluation / "levels.csv", index=False)
    _series(worlds).to_csv(evaluation / "series.csv", index=False)
    horizon = [
        {"model": m, "horizon": h, "mae": 10.0 * h + k, "rmse": 20.0 * h, "target": w}
        for w in worlds
        for k, m in enumerate(MODELS)
        for h in (1, 2, 3)
    ]
    pd.DataFrame(horizon).to_csv(evaluation / "horizon.csv", index=False)
    gap = _gap() if counterfactual else pd.DataFrame(columns=list(_gap().columns))
    gap.to_csv(evaluation / "gap.csv", index=False)
    counts = {
        w: {"rows_in": 1000, "rows_kept": 990, "rows_quarantined": 10, "quarantined_bad_date": 10}
        for w in worlds
    }
    _write_json(
        counts | {"panel": {"series": 4, "series_only_in_test": 0, "series_all_zero_in_training": 0}},
        root / "reports" / "prepare.json",
    )
    _write_json(
        {
            "lstm": {"train_loss": 0.1, "val_loss": 0.2, "epochs": [3]},
            "lstm_ensemble": {"train_loss": 0.09, "val_loss": 0.19, "epochs": [2, 3]},
        },
        root / "reports" / "train" / "metrics.json",
    )
    _write_json(
        {"lstm_k1_seconds": 10.0, "lstm_ensemble_k2_seconds": 14.0},
        root / "artifacts" / "timing" / "train.json",
    )
    train_live = root / "reports" / "train" / "live"
    write_curves(train_live, "lstm", [([0.3, 0.2, 0.1], [0.4, 0.3, 0.3])])
    write_curves(train_live, "lstm_ensemble", [([0.3, 0.2], [0.4, 0.3]), ([0.5, 0.4], [0.6, 0.5])])
    _write_json(
        {"thesis": {"train_loss": 0.5, "val_loss": 0.6, "epochs": [2]}},
        root / "reports" / "train_thesis" / "metrics.json",
    )
    _write_json({"thesis_k1_seconds": 5.0}, root / "artifacts" / "timing" / "train_thesis.json")
    backtest = {
        m: {
            "mase": 1.0 + k / 10,
            "mase_store": 0.9 + k / 10,
            "mase_category": 1.1,
            "mase_total": 2.0 - k / 10,
        }
        | {"relative_bias_total": 0.01 * k, "coverage_80": 0.8}
        for k, m in enumerate(MODELS)
    }
    _write_json({"observed": {"mean": backtest}}, root / "reports" / "backtest.json")
    member = {"learning_rate": 1e-3, "weight_decay": 1e-2, "seed": 0, "val_loss": 0.2, "epoch": 4}
    sweep = {"members": {"member_0": member}, "chosen": {"member": 0} | member}
    _write_json(sweep, root / "reports" / "sweep.json")
    for world in worlds:
        plots.calibration(_levels(metrics), "lstm_ensemble", world, evaluation / f"calibration_{world}.png")
    plots.save(plots.plt.figure(), root / "reports" / "backtest" / "error_by_origin.png")
    ahead = [
        {
            "month": f"2020-0{h}",
            "level": "total",
            "store": "",
            "category": "",
            "model": m,
            "mean": 1e6 * (h + k),
        }
        for k, m in enumerate(MODELS)
        for h in (4, 5)
    ]
    (root / "reports" / "forecast").mkdir(parents=True)
    pd.DataFrame(ahead).to_csv(root / "reports" / "forecast" / "forecast.csv", index=False)
    for name in ("fan_total", "fan_stores"):
        plots.save(plots.plt.figure(), root / "reports" / "forecast" / f"{name}.png")
    write_curves(root / "reports" / "train_thesis" / "live", "thesis", [([0.9, 0.5], [0.8, 0.6])])


MIXED = {"observed": _metrics(0.8, 0.9), "counterfactual": _metrics(0.85, 0.7)}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """One report run on a fake tree of both worlds: the ensemble wins on observed, not on counterfactual."""
    root = tmp_path_factory.mktemp("tree")
    write_tree(root, MIXED)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        run_report(parse_config(tiny_params()))
    return root


def _outputs(root) -> dict[str, bytes]:
    """Every file the report stage writes, by path."""
    files = [root / "reports" / "report.md", root / "reports" / "report.html"]
    files += sorted((root / "reports" / "figures").glob("*.png")) + sorted(
        (root / "reports" / "plots").glob("*.csv")
    )
    return {str(f.relative_to(root)): f.read_bytes() for f in files}


def test_report_contents(tree):
    """Every model is in the comparison table and the MASE sentences are right in both directions."""
    md = (tree / "reports" / "report.md").read_text()
    comparison = md.split("## Comparison with the baselines")[1].split("## Every level")[0]
    for model in MODELS:
        assert len(re.findall(rf"^\| {model} \|", comparison, flags=re.M)) == 2  # one row per world
    assert (
        "On observed 2020-01..2020-03 the LSTM ensemble's MASE (0.800) is below every baseline "
        "(best: seasonal_naive 0.900)." in md
    )
    assert (
        "On counterfactual 2020-01..2020-03 the LSTM ensemble's MASE (0.850) is NOT below every baseline "
        "(seasonal_naive 0.700 beats it)." in md
    )
    assert "| lstm_ensemble | 101 | 151 | **0.800** |" in comparison  # best MASE on observed is bold
    assert len(list((tree / "reports" / "figures").glob("*.png"))) == 9
    backtest = md.split("## Rolling-origin backtest")[1].split("## Hyperparameter sweep")[0]
    for model in MODELS:
        assert len(re.findall(rf"^\| {model} \|", backtest, flags=re.M)) == 1
    assert (
        "- total: On observed the backtest (mean over origins) the LSTM ensemble's MASE (1.900) is NOT" in md
    )
    assert "![Calibration against the counterfactual actuals](evaluate/calibration_counterfactual.png)" in md
    assert "Lowest hold-out loss: member 0 (learning rate 0.001, weight decay 0.01)" in md
    assert "| 2020-05 | 5.000 | 6.000 |" in md and "| year | 9.000 | 11.000 |" in md  # lstm, lstm_ensemble


def test_training_curves_are_member_means_of_the_dvclive_files(tree):
    curves = inputs._curves(tree / "reports" / "train" / "live", "train")
    assert list(curves) == ["lstm", "lstm_ensemble"]
    expected = pd.DataFrame({"epoch": [1, 2], "train": [0.4, 0.3], "val": [0.5, 0.4]})
    pd.testing.assert_frame_equal(curves["lstm_ensemble"], expected)
    assert inputs._curves(tree / "reports" / "nowhere", "train") == {}


def test_html_is_self_contained(tree):
    """No external references or scripts; every image is an embedded PNG, one per markdown image."""
    page = (tree / "reports" / "report.html").read_text()
    md = (tree / "reports" / "report.md").read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page.lower()
    sources = re.findall(r'<img [^>]*src="([^"]*)"', page)
    assert len(sources) == md.count("![") == 9 + 2 + 1 + 2  # figures, calibration per world, backtest, fans
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<table>" in page and "<strong>0.800</strong>" in page


def test_second_run_gives_identical_bytes(tree, monkeypatch, config):
    """The stage is deterministic: every output file is byte-identical on a second run."""
    first = _outputs(tree)
    monkeypatch.chdir(tree)
    run_report(config)
    assert _outputs(tree) == first


def test_without_counterfactual(tmp_path, monkeypatch, config):
    """No counterfactual world: one comparison table, the disruption figure skipped with a note."""
    write_tree(tmp_path, {"observed": _metrics(0.95, 0.9)}, counterfactual=False)
    monkeypatch.chdir(tmp_path)
    run_report(config)
    md = (tmp_path / "reports" / "report.md").read_text()
    assert "is NOT below every baseline (seasonal_naive 0.900 beats it)" in md
    assert "counterfactual" not in (tmp_path / "reports" / "plots" / "company_forecast.csv").read_text()
    assert "the disruption figure is skipped" in md
    assert not (tmp_path / "reports" / "figures" / "disruption.png").exists()


def test_missing_input_is_a_one_line_error(tmp_path, monkeypatch, config):
    """A missing stage output fails with a SalesjaxError naming the file."""
    write_tree(tmp_path, MIXED)
    (tmp_path / "reports" / "metrics.json").unlink()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SalesjaxError, match="metrics.json"):
        run_report(config)


def test_company_forecast_csv(tree):
    """The DVC plot files: company totals per test month (actuals and medians), MAE per horizon."""
    frame = pd.read_csv(tree / "reports" / "plots" / "company_forecast.csv")
    assert list(frame.columns) == ["month", "horizon", "actual_observed", "actual_counterfactual", *MODELS]
    panel = _panel(True)
    expected = panel[panel["month"].isin(TEST)].groupby("month")["observed"].sum().to_numpy()
    np.testing.assert_allclose(frame["actual_observed"], expected, rtol=1e-5)
    np.testing.assert_allclose(frame["lstm"], expected * 1.1, rtol=1e-5)
    horizon = pd.read_csv(tree / "reports" / "plots" / "error_by_horizon.csv")
    assert list(horizon.columns) == ["horizon", *MODELS] and horizon["lstm"].tolist() == [10.0, 20.0, 30.0]


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            {"lstm_ensemble": {"mase": 0.5}, "naive": {"mase": 0.6}, "ets": {"mase": 0.55}},
            "is below every baseline (best: ets 0.550).",
        ),
        (
            {"lstm_ensemble": {"mase": 0.5}, "naive": {"mase": 0.5}, "ets": {"mase": 0.4}},
            "is NOT below every baseline (ets 0.400, naive 0.500 beat it).",
        ),
        (
            {"lstm_ensemble": {"mase": 0.5}, "thesis": {"mase": 0.1}, "ets": {"mase": 0.6}},
            "is below every baseline (best: ets 0.600).",
        ),
    ],
)
def test_mase_sentence(table, expected):
    """Strictly below every baseline or not; a tie is not below; LSTM variants are not baselines."""
    sentence = mase_sentence("observed", "2020", table, "lstm_ensemble")
    assert sentence == f"On observed 2020 the LSTM ensemble's MASE (0.500) {expected}"


def test_best_values_are_marked():
    """Bold marks the lowest error, the bias closest to 0 and the coverage closest to 0.8."""
    assert marked([3.0, 1.0, 2.0], "mase") == ["3.000", "**1.000**", "2.000"]
    assert marked([-5.0, 7.0, np.nan], "bias") == ["**-5**", "7", "–"]
    assert marked([0.95, 0.7, 0.62], "coverage_80") == ["0.950", "**0.700**", "0.620"]


def test_markdown_to_html(tmp_path):
    """Headings, paragraphs with bold/code, escaped text, lists, aligned pipe tables and embedded images."""
    (tmp_path / "f.png").write_bytes(b"\x89PNG fake")
    md = "# Title\n\nA **b** `c` <x> & y\n\n- one\n- two\n\n"
    md += "| a | b \\| c |\n|:---|---:|\n| x | 1 |\n\n![cap](f.png)\n"
    page = to_html(md, tmp_path)
    assert "<title>Title</title>" in page and "<h1>Title</h1>" in page
    assert "<p>A <strong>b</strong> <code>c</code> &lt;x&gt; &amp; y</p>" in page
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in page
    assert '<th style="text-align:left">a</th>\n<th style="text-align:right">b | c</th>' in page
    assert '<td style="text-align:right">1</td>' in page
    assert '<img src="data:image/png;base64,iVBORyBmYWtl" alt="cap">' in page


def test_html_has_the_markdowns_headings_and_tables(tree):
    """Every Markdown heading is an <hN>, every pipe table a <table> with one <tr> per row."""
    page = (tree / "reports" / "report.html").read_text()
    md = (tree / "reports" / "report.md").read_text()
    headings = re.findall(r"^(#+) (.+)$", md, flags=re.M)
    assert len(headings) > 10
    for hashes, text in headings:
        assert f"<h{len(hashes)}>{text}</h{len(hashes)}>" in page
    table_lines = re.findall(r"^\|.*\|$", md, flags=re.M)
    delimiters = [line for line in table_lines if re.fullmatch(r"\|(:?-+:?\|)+", line)]
    assert (
        page.count("<table>") == page.count("</table>") == len(delimiters) == 11 + 2 + 1 + 1 + 1
    )  # + calibration, backtest, sweep, forecast
    assert page.count("<tr>") == len(table_lines) - len(delimiters)
    assert page.count("<thead>") == len(delimiters)


OLD_CONVERTER = {"inline", "blocks", "html_block", "html_table", "html_image", "_html_row", "_cells"}


def test_no_hand_written_markdown_parser_remains():
    """The report package renders with markdown-it-py; none of the old converter's names is defined."""
    package = Path(salesjax.report.__file__).parent
    assert not (package.parent / "report.py").exists()
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
        names |= {
            t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
        }
        assert not names & OLD_CONVERTER, (path.name, names & OLD_CONVERTER)
    assert "from markdown_it import MarkdownIt" in (package / "html.py").read_text()


def test_the_forecast_section_says_how_many_stores_its_fan_chart_draws(tree, monkeypatch, config):
    """The fan chart of the stores: 'Every store' up to GRID_STORES, else the largest of how many."""
    from salesjax.report.sections import section_forecast

    monkeypatch.chdir(tree)
    loaded = inputs.load_inputs()
    view = make_view(config, loaded)
    assert "![Every store: forecast](forecast/fan_stores.png)" in section_forecast(loaded, view)
    stores = pd.DataFrame(
        {
            "month": "2020-04",
            "level": "store",
            "store": [str(s) for s in range(250)],
            "category": "",
            "model": "naive",
        }
    )
    many = loaded._replace(forecast=pd.concat([loaded.forecast, stores], ignore_index=True))
    lines = section_forecast(many, view)
    assert "![The 20 largest of the 250 stores: forecast](forecast/fan_stores.png)" in lines


def test_store_figures_draw_only_the_largest_stores(tree, monkeypatch, config):
    """A chain beyond GRID_STORES / HEATMAP_STORES: the largest only, in order, and the captions say so."""
    monkeypatch.chdir(tree)
    loaded = inputs.load_inputs()
    view = make_view(config, loaded)
    assert view.stores == ["108", "36"]  # 108 holds the larger series
    actual, forecast = store_frames(loaded, view, limit=1)
    assert set(actual["panel"]) == set(forecast["panel"]) == {"store 108"}
    assert "Monthly revenue per store (largest first)" in caption("store_forecasts", view)
    assert "largest first)." in caption("heatmap_rmse", view)
    many = view._replace(stores=[str(s) for s in range(250)])
    assert "Monthly revenue of the 20 largest of the 250 stores (largest first)" in caption(
        "store_forecasts", many
    )
    assert "largest first; the 100 largest of the 250 stores)." in caption("heatmap_rmse", many)
