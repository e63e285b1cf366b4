"""GET /6minutes: a plain page that points at the API until the live dashboard lands."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sixminutes</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}
code{background:#eee;padding:0 .2em}</style></head>
<body><h1>sixminutes</h1>
<p>The service is running. Its data, as JSON and live events:</p>
<ul>
<li><a href="/6minutes/data"><code>/6minutes/data</code></a> — every window and series</li>
<li><a href="/6minutes/alerts"><code>/6minutes/alerts</code></a> — alerts, newest first</li>
<li><a href="/6minutes/status"><code>/6minutes/status</code></a> — sources, plugins, counts</li>
<li><a href="/6minutes/events"><code>/6minutes/events</code></a> — live events (SSE)</li>
<li><a href="/metrics"><code>/metrics</code></a> — Prometheus</li>
</ul></body></html>
"""
