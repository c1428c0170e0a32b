"""A native app's SMART launch (RFC 8252) against a running hep-server, stdlib only.

The authorization code flow with PKCE S256 and a loopback redirect: the app listens on
http://127.0.0.1:<a free port>/callback (the client is registered with
http://127.0.0.1/callback; any port of a loopback redirect is accepted), reads the
server's HTML pages as a browser would (html.parser, cookies in http.cookiejar), redeems
the patient's invitation code, allows, catches the redirect on its own http.server,
redeems the code at the token endpoint as a public client, reads the Patient, and checks
the refusals: a code used twice, a wrong code_verifier, a refresh token used twice (which
revokes the whole family, the newer token too), an unregistered redirect URI.

Usage: python3 .ci/native_launch.py --server http://127.0.0.1:PORT --client-id ID \
    --invite CODE --patient ID [--birth-date 1961-04-12] [--other-patient ID]
Exits non-zero with a message naming the first check that failed.
"""

import argparse
import base64
import hashlib
import html.parser
import http.cookiejar
import http.server
import json
import secrets
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs"


class Failure(Exception):
    pass


def ok(message):
    print(f"ok: {message}", flush=True)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Page(html.parser.HTMLParser):
    """The forms (action, method, fields, submit buttons), links, alerts and text of a page."""

    def __init__(self, url, body):
        super().__init__(convert_charrefs=True)
        self.url = url
        self.forms = []
        self.links = []
        self.alerts = []
        self.text = []
        self._form = None
        self._link = None
        self._alert_depth = 0
        self._depth = 0
        self.feed(body)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag not in ("input", "meta", "link", "br", "img", "hr"):
            self._depth += 1
        if a.get("role") == "alert" and not self._alert_depth:
            self._alert_depth = self._depth
            self.alerts.append("")
        if tag == "form":
            self._form = {
                "action": a.get("action", ""),
                "method": a.get("method", "get").lower(),
                "fields": {},
                "inputs": {},
                "buttons": [],
            }
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None:
            name = a.get("name")
            if name:
                self._form["inputs"][name] = a
                kind = a.get("type", "text").lower()
                if kind in ("radio", "checkbox"):
                    if "checked" in a:
                        self._form["fields"][name] = a.get("value", "on")
                elif kind != "submit":
                    self._form["fields"][name] = a.get("value", "")
        elif tag == "button" and self._form is not None:
            self._form["buttons"].append(a)
        elif tag == "a":
            self._link = {"href": a.get("href", ""), "text": ""}
            self.links.append(self._link)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "a":
            self._link = None
        if tag not in ("input", "meta", "link", "br", "img", "hr"):
            if self._alert_depth and self._depth == self._alert_depth:
                self._alert_depth = 0
            self._depth -= 1

    def handle_data(self, data):
        self.text.append(data)
        if self._link is not None:
            self._link["text"] += data
        if self._alert_depth:
            self.alerts[-1] += data

    def all_text(self):
        return " ".join(" ".join(self.text).split())

    def form(self, action):
        for f in self.forms:
            if urllib.parse.urlsplit(f["action"]).path == action:
                return f
        raise Failure(f"{self.url}: no form to {action}; the page says: {self.all_text()[:400]}")


class Callback(http.server.BaseHTTPRequestHandler):
    """The app's loopback redirect endpoint: records each query it receives."""

    received = []

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/callback":
            self.send_error(404)
            return
        Callback.received.append(dict(urllib.parse.parse_qsl(url.query)))
        body = b"<!doctype html><title>Done</title><p>You can close this window.</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """urllib with a cookie jar: follows redirects (to the loopback callback too)."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        cookies = urllib.request.HTTPCookieProcessor(self.jar)
        no_proxy = urllib.request.ProxyHandler({})
        self.opener = urllib.request.build_opener(no_proxy, cookies)
        self.direct = urllib.request.build_opener(no_proxy, cookies, NoRedirect())

    def open(self, url, form=None, follow=True, headers=None):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(url, data=data, headers=headers or {})
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with (self.opener if follow else self.direct).open(req, timeout=30) as r:
                return r.status, r.geturl(), dict(r.headers), r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.geturl(), dict(e.headers), e.read().decode("utf-8", "replace")

    def page(self, url, form=None, expect=200, what=""):
        status, final, _, body = self.open(url, form)
        if status != expect:
            shown = Page(final, body)
            said = shown.alerts or [shown.all_text()[:400]]
            raise Failure(f"{what or url}: answered {status} at {final}, not {expect}: {' / '.join(said)}")
        return Page(final, body)


def submit(browser, page, form, extra, what, expect=200):
    fields = dict(form["fields"])
    fields.update(extra)
    url = urllib.parse.urljoin(page.url, form["action"])
    if form["method"] != "post":
        raise Failure(f"{what}: the form to {form['action']} is not a POST")
    return browser.page(url, fields, expect=expect, what=what)


def post_json(url, form, expect, what, headers=None):
    req = urllib.request.Request(
        url, data=urllib.parse.urlencode(form).encode(), headers=headers or {}
    )
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    try:
        answer = json.loads(body)
    except ValueError:
        raise Failure(f"{what}: answered {status} with no JSON: {body[:300]!r}")
    if status != expect:
        raise Failure(f"{what}: answered {status}, not {expect}: {answer}")
    return answer


def get_json(url, token, expect, what):
    req = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    if status != expect:
        raise Failure(f"{what}: answered {status}, not {expect}: {body[:300]!r}")
    return json.loads(body) if body else None


def expect_invalid_grant(answer, what):
    if answer.get("error") != "invalid_grant":
        raise Failure(f"{what}: error {answer.get('error')!r}, not invalid_grant: {answer}")


def authorize(browser, config, args, redirect_uri, challenge, state):
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": args.client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPE,
            "state": state,
            "aud": f"{args.server}/fhir",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return browser.page(f"{config['authorization_endpoint']}?{query}", what="GET /auth/authorize")


def allow(browser, page, redirect_uri, state, what):
    """Posts the consent form's allow; the redirect lands on the loopback listener."""
    before = len(Callback.received)
    form = page.form("/auth/consent")
    values = {b.get("value") for b in form["buttons"] if b.get("name") == "decision"}
    if not {"allow", "deny"} <= values:
        raise Failure(f"{what}: the consent form's decision buttons are {sorted(values)}")
    status, final, _, body = browser.open(
        urllib.parse.urljoin(page.url, form["action"]), {**form["fields"], "decision": "allow"}
    )
    if status != 200 or not final.startswith(redirect_uri + "?"):
        raise Failure(f"{what}: allow ended at {final} ({status}), not {redirect_uri}: {body[:300]}")
    if len(Callback.received) != before + 1:
        raise Failure(f"{what}: the loopback listener got no redirect")
    got = Callback.received[-1]
    if got.get("state") != state:
        raise Failure(f"{what}: the redirect's state is {got.get('state')!r}, not {state!r}")
    if "error" in got or not got.get("code"):
        raise Failure(f"{what}: the redirect carries {got}, no code")
    return got["code"]


def run(args):
    server = args.server.rstrip("/")
    args.server = server
    listener = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Callback)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    redirect_uri = f"http://127.0.0.1:{listener.server_address[1]}/callback"
    try:
        run_flow(args, redirect_uri)
    finally:
        listener.shutdown()


def run_flow(args, redirect_uri):
    browser = Browser()
    config = get_json(
        f"{args.server}/fhir/.well-known/smart-configuration", "", 200, "smart-configuration"
    )
    if "S256" not in config.get("code_challenge_methods_supported", []):
        raise Failure(f"smart-configuration: no S256 in code_challenge_methods_supported: {config}")
    token_endpoint = config["token_endpoint"]

    # An unregistered redirect URI: an error page of the server, never a redirect.
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": args.client_id,
            "redirect_uri": redirect_uri.replace("/callback", "/elsewhere"),
            "scope": SCOPE,
            "state": "x",
            "aud": f"{args.server}/fhir",
            "code_challenge": b64url(hashlib.sha256(b"x").digest()),
            "code_challenge_method": "S256",
        }
    )
    status, _, headers, _ = browser.open(
        f"{config['authorization_endpoint']}?{query}", follow=False
    )
    if status != 400 or "Location" in headers:
        raise Failure(f"an unregistered redirect URI answered {status} {headers.get('Location')}")
    ok("an unregistered redirect URI gets the server's error page (400), no redirect")

    verifier = b64url(secrets.token_bytes(32))
    challenge = b64url(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_urlsafe(16)

    sign_in = authorize(browser, config, args, redirect_uri, challenge, state)
    sign_in.form("/auth/login")
    links = [l for l in sign_in.links if l["text"].strip() == "I have a code from my clinic"]
    if len(links) != 1:
        raise Failure(f"sign-in page: no one link 'I have a code from my clinic': {sign_in.links}")
    code_page = browser.page(urllib.parse.urljoin(sign_in.url, links[0]["href"]), what="code page")
    redeem = code_page.form("/auth/redeem")
    for name in ("csrf", "request", "code", "birth_date", "username", "password"):
        if name not in redeem["inputs"]:
            raise Failure(f"code page: the form has no {name} field: {sorted(redeem['inputs'])}")
    username = f"native-{secrets.token_hex(4)}"
    password = f"Harbor-lantern-{secrets.token_hex(4)}-9!"

    consent = submit(
        browser,
        code_page,
        redeem,
        {"code": args.invite, "birth_date": args.birth_date, "username": username, "password": password},
        "POST /auth/redeem",
    )
    if "hep_session" not in {c.name for c in browser.jar}:
        raise Failure("redeeming the code set no hep_session cookie")
    if args.app_name not in consent.all_text():
        raise Failure(f"the consent page does not name {args.app_name!r}: {consent.all_text()[:400]}")
    ok("the invitation code made an account; the consent page names the app")

    code = allow(browser, consent, redirect_uri, state, "consent")
    ok(f"allow: the loopback listener at {redirect_uri} got the code and the state")

    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": args.client_id,
    }
    token = post_json(token_endpoint, exchange, 200, "the code at /auth/token")
    if str(token.get("token_type", "")).lower() != "bearer" or not token.get("access_token"):
        raise Failure(f"token answer: {token}")
    if token.get("patient") != args.patient:
        raise Failure(f"token answer: patient {token.get('patient')!r}, not {args.patient}")
    if not token.get("refresh_token"):
        raise Failure(f"token answer: no refresh_token for offline_access: {sorted(token)}")
    if not token.get("id_token"):
        raise Failure(f"token answer: no id_token for openid: {sorted(token)}")
    ok(f"token: Bearer for patient {token['patient']}, scope {token.get('scope')!r}, refresh and id tokens")

    patient = get_json(
        f"{args.server}/fhir/Patient/{args.patient}", token["access_token"], 200, "read Patient"
    )
    if patient.get("id") != args.patient or patient.get("birthDate") != args.birth_date:
        raise Failure(f"Patient/{args.patient}: {patient}")
    if args.other_patient:
        get_json(
            f"{args.server}/fhir/Patient/{args.other_patient}",
            token["access_token"],
            404,
            "another patient's Patient",
        )
    ok(f"Patient/{args.patient} read with the access token" + (", another patient's is 404" if args.other_patient else ""))

    # Refresh: a new refresh token; the old one used again is refused, and that reuse
    # revokes the family, so the new one is refused too.
    first = token["refresh_token"]
    refreshed = post_json(
        token_endpoint,
        {"grant_type": "refresh_token", "refresh_token": first, "client_id": args.client_id},
        200,
        "refresh",
    )
    second = refreshed.get("refresh_token")
    if not refreshed.get("access_token") or not second or second == first:
        raise Failure(f"refresh: no new access and refresh token: {sorted(refreshed)}")
    get_json(
        f"{args.server}/fhir/Patient/{args.patient}",
        refreshed["access_token"],
        200,
        "read Patient with the refreshed token",
    )
    ok("refresh: a new access token (it reads the Patient) and a new refresh token")
    expect_invalid_grant(
        post_json(
            token_endpoint,
            {"grant_type": "refresh_token", "refresh_token": first, "client_id": args.client_id},
            400,
            "the old refresh token again",
        ),
        "the old refresh token again",
    )
    expect_invalid_grant(
        post_json(
            token_endpoint,
            {"grant_type": "refresh_token", "refresh_token": second, "client_id": args.client_id},
            400,
            "the new refresh token after the old one's reuse",
        ),
        "the new refresh token after the old one's reuse",
    )
    ok("the old refresh token is refused on reuse, and the reuse revoked the new one too")

    expect_invalid_grant(
        post_json(token_endpoint, exchange, 400, "the same code a second time"),
        "the same code a second time",
    )
    ok("the same code a second time: invalid_grant")

    # Signed in now: a second authorization goes straight to consent; its code with a
    # wrong code_verifier is refused.
    verifier2 = b64url(secrets.token_bytes(32))
    state2 = secrets.token_urlsafe(16)
    consent2 = authorize(
        browser,
        config,
        args,
        redirect_uri,
        b64url(hashlib.sha256(verifier2.encode()).digest()),
        state2,
    )
    consent2.form("/auth/consent")
    code2 = allow(browser, consent2, redirect_uri, state2, "second consent")
    expect_invalid_grant(
        post_json(
            token_endpoint,
            {**exchange, "code": code2, "code_verifier": b64url(secrets.token_bytes(32))},
            400,
            "a code with the wrong code_verifier",
        ),
        "a code with the wrong code_verifier",
    )
    ok("signed in, a second authorization goes to consent; a wrong code_verifier: invalid_grant")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True, help="the server's origin, http://127.0.0.1:PORT")
    p.add_argument("--client-id", required=True)
    p.add_argument("--invite", required=True, help="the patient's invitation code")
    p.add_argument("--patient", required=True, help="the invited Patient's id")
    p.add_argument("--birth-date", default="1961-04-12")
    p.add_argument("--other-patient", help="a Patient id the token must not open")
    p.add_argument("--app-name", default="HEP native test app")
    args = p.parse_args()
    try:
        run(args)
    except Failure as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    print("the native loopback launch passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
