"""The welcome page the example `demo` site shows (served by the admin listener at /demo/).

It lists the sites vhostd routes right now, so a fresh `make run` shows something true
about the machine. Everything shown is escaped: hosts come from files and containers.
"""

from __future__ import annotations

from html import escape

from vhostd.routing.describe import describe_routes
from vhostd.routing.pipeline import RoutePipeline

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>vhostd is running</title>
<style>
 body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 46em; margin: 3em auto; padding: 0 1em;
        color: #222; }}
 h1 {{ font-size: 1.6em; margin-bottom: .2em; }}
 code, pre {{ background: #f3f3f3; padding: .1em .3em; border-radius: 3px; }}
 pre {{ padding: .8em; overflow-x: auto; }}
 table {{ border-collapse: collapse; width: 100%; }}
 td, th {{ text-align: left; padding: .25em .6em; border-bottom: 1px solid #ddd; }}
 .muted {{ color: #777; }}
</style></head>
<body>
<h1>It works: vhostd is routing this host</h1>
<p class="muted">One port, every project. This page is the <code>demo</code> site of
<code>examples/demo</code>, answered by vhostd's admin listener through the proxy.</p>

<h2>Sites routed now ({count})</h2>
{table}

<h2>Add a project</h2>
<p>Drop a file in the <code>sites.d</code> directory next to the config; it is live
within a second, no restart:</p>
<pre>[[site]]
name = "myapp"
hosts = ["myapp.localhost"]
backends = ["http://127.0.0.1:3000"]</pre>
<p>Containers announce themselves with <code>VIRTUAL_HOST=myapp.localhost</code>.
Any <code>*.localhost</code> name reaches this machine without DNS set-up.
Protect a site with <code>vhostd auth add myapp.localhost alice</code>.</p>
<p class="muted">Routes as JSON: <code>/api/routes</code> on the admin listener, or
<code>vhostd routes</code>.</p>
</body></html>
"""


def _rows(pipeline: RoutePipeline) -> str:
    sites = describe_routes(pipeline)
    if not sites:
        return "<p>No sites yet.</p>"
    rows = []
    for site in sites:
        hosts = ", ".join(escape(h) for h in site["hosts"]) or "(default)"
        backends = ", ".join(escape(b["url"]) for b in site["backends"]) or "none"
        rows.append(
            f"<tr><td>{escape(site['site'])}</td><td>{hosts}</td><td>{backends}</td></tr>"
        )
    return (
        "<table><tr><th>site</th><th>hosts</th><th>backends</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def demo_page(pipeline: RoutePipeline) -> bytes:
    """The HTML of the welcome page, with the live list of sites."""
    return _PAGE.format(count=len(pipeline.route_table.sites), table=_rows(pipeline)).encode()
