"""The few HTML pages openmwaa serves itself: console sign-in, the login form, and their results.

Everything interpolated is escaped; the sign-in script reads the web login token from the URL
fragment (which browsers never send to a server), removes it from the address bar and history,
and POSTs it to the login route of the same origin.
"""

from __future__ import annotations

import json
from html import escape

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}"
    "input[type=text]{width:100%;font-family:monospace}code{background:#eee;padding:0 .2rem}"
)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _script_string(value: str) -> str:
    """A JavaScript string literal that cannot end the surrounding ``<script>`` element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def console_sso_page(login_path: str, next_url: str = "/") -> str:
    """Reads ``#<WebToken>``, signs in through ``login_path``, then opens the Airflow UI at ``next_url``
    (a same-origin path the caller has checked)."""
    script = (
        "(function(){var t=decodeURIComponent(location.hash.slice(1));"
        "history.replaceState(null,'',location.pathname+location.search);"
        "var m=document.getElementById('msg');"
        "if(!t){m.textContent='No web login token in the address (expected #<WebToken>).';return;}"
        f"fetch({json.dumps(login_path)},{{method:'POST',credentials:'same-origin',"
        "headers:{'Content-Type':'application/x-www-form-urlencoded'},"
        "body:'token='+encodeURIComponent(t)})"
        f".then(function(r){{if(r.ok){{location.replace({_script_string(next_url)});}}"
        "else{return r.text().then(function(x){m.textContent='Sign-in failed ('+r.status+'). '+"
        "'Create a new web login token (they are valid for 60 seconds and work once).';});}})"
        ".catch(function(){m.textContent='Sign-in failed: the web server could not be reached.';});})();"
    )
    return _page(
        "Signing in to Airflow",
        f"<p id=msg>Signing in to Apache Airflow&hellip;</p><script>{script}</script>",
    )


def login_form_page(login_path: str, next_url: str = "/") -> str:
    return _page(
        "Sign in to Airflow",
        "<h1>Sign in to Apache Airflow</h1>"
        "<p>Create a web login token with "
        "<code>aws mwaa create-web-login-token --name &lt;environment&gt;</code> "
        "and paste its <code>WebToken</code> below within 60 seconds.</p>"
        f'<form method=post action="{escape(login_path)}">'
        '<input type=text name=token autocomplete=off required aria-label="Web login token">'
        f'<input type=hidden name=next value="{escape(next_url)}">'
        "<p><button type=submit>Sign in</button></p></form>",
    )


def signed_in_page(next_url: str | None) -> str:
    refresh = f'<meta http-equiv=refresh content="0;url={escape(next_url)}">' if next_url else ""
    return _page(
        "Signed in", f'{refresh}<p>Signed in. <a href="{escape(next_url or "/")}">Open Airflow</a></p>'
    )


def message_page(title: str, message: str, login_path: str | None = None) -> str:
    link = f'<p><a href="{escape(login_path)}">Sign in again</a></p>' if login_path else ""
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>{link}")
