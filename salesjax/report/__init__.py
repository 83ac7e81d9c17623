"""The report stage: figures, DVC plot files, report.md and a self-contained report.html.

Everything in the report comes from the earlier stages' outputs and params; the prose is fixed templates
filled with those numbers. `inputs` reads the stage outputs, `view` holds what every part shares,
`frames` shapes them for figures and plot files, `figures` draws, `tables` formats numbers into
Markdown tables, `opening` and `sections` write the text, `html` renders the Markdown with
markdown-it-py, and `stage.run_report` runs them in that order. Given the same inputs, every output
is the same bytes.
"""
