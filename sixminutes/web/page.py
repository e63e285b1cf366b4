"""GET /6minutes: the live dashboard's HTML shell (sixminutes/web/static/index.html).

The page itself is plain HTML, CSS and ES modules under static/, served by static.py at
/6minutes/static/...; its charts use plotly.js from the `plotly` package (no CDN).
"""
from pathlib import Path

__all__ = ["PAGE"]

PAGE = (Path(__file__).with_name("static") / "index.html").read_text(encoding="utf-8")
