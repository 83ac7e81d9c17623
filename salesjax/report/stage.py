"""`salesjax report`: the stage's file IO, a short recipe over the report's modules."""

import logging

from salesjax import plots
from salesjax.config import Config
from salesjax.report.figures import draw_figures
from salesjax.report.frames import company_forecast, horizon_table
from salesjax.report.html import to_html
from salesjax.report.inputs import load_inputs
from salesjax.report.sections import build_markdown
from salesjax.report.view import make_view
from salesjax.stages import REPORTS

FIGURES = REPORTS / "figures"
logger = logging.getLogger(__name__)
PLOTS = REPORTS / "plots"


def run_report(cfg: Config) -> None:
    """Draw the figures, write the DVC plot files, then report.md and the self-contained report.html."""
    inputs = load_inputs()
    view = make_view(cfg, inputs)
    company = company_forecast(inputs, view)
    plots.write_csv(company, PLOTS / "company_forecast.csv")
    plots.write_csv(horizon_table(inputs, view), PLOTS / "error_by_horizon.csv")
    figures = draw_figures(inputs, view, company, FIGURES)
    markdown = build_markdown(inputs, view, figures)
    (REPORTS / "report.md").write_text(markdown)
    (REPORTS / "report.html").write_text(to_html(markdown, REPORTS))
    logger.info(f"report: {len(figures)} figures, {REPORTS / 'report.md'}, {REPORTS / 'report.html'}")
