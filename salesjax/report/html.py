"""Markdown -> one self-contained HTML page, rendered by markdown-it-py (CommonMark with pipe tables).

Every image is embedded as a base64 PNG data URI read from disk, the CSS is inline, there are no
scripts and raw HTML in the Markdown is escaped, so the page renders offline; the same Markdown and
images give the same bytes.
"""

import base64
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token

CSS = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f2f2f2; }
img { max-width: 100%; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _embedded_image(renderer, tokens: list[Token], idx: int, options, env: dict) -> str:
    """An image rule for markdown-it's renderer: the file (relative to env["base"]) as a data URI."""
    token = tokens[idx]
    data = base64.b64encode((env["base"] / str(token.attrGet("src"))).read_bytes()).decode("ascii")
    alt = renderer.renderInlineAsText(token.children or [], options, env)
    return f'<img src="data:image/png;base64,{data}" alt="{escapeHtml(alt)}">'


def _markdown_parser() -> MarkdownIt:
    """CommonMark with pipe tables, raw HTML escaped and images embedded."""
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    parser.add_render_rule("image", _embedded_image)
    return parser


def _title(parser: MarkdownIt, tokens: list[Token]) -> str:
    """The plain text of the first heading, escaped ('report' without one)."""
    for heading, inline in zip(tokens, tokens[1:], strict=False):
        if heading.type == "heading_open":
            return escapeHtml(parser.renderer.renderInlineAsText(inline.children or [], parser.options, {}))
    return "report"


def to_html(markdown: str, base: Path) -> str:
    """A self-contained HTML page of the Markdown; images are read relative to `base`."""
    parser = _markdown_parser()
    env = {"base": base}
    tokens = parser.parse(markdown, env)
    body = parser.renderer.render(tokens, parser.options, env)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{_title(parser, tokens)}'
        f"</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )
