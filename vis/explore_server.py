"""The explorer's web server: the standard library's ``ThreadingHTTPServer``.

Why the standard library: the server answers two JSON requests and four
fixed files on the user's own machine; a web framework would add a
dependency (and its own dependencies) for routing that a dict does, and
http.server is maintained with Python itself.

What it serves is a fixed routing table, filled at start:

    GET  /              the page (index.html)      GET /explore.css, /explore.js
    GET  /data.js       the network's layout and example images, as a script
    POST /api/predict   {"pixels"} -> probabilities and every layer's output
    POST /api/unit      {"pixels", "layer", "channel", "select"} -> projections, filter, statistics

The page's files are read into memory when the server starts; no part of a
request's path is ever joined to a file name. Anything else is a 404. A
request the explorer cannot answer (a wrong size, a non-finite pixel, an
unknown layer or channel, a body over ``MAX_BODY_BYTES``, bad JSON) gets a
400 whose JSON body holds a one-line reason; a failure of the server's own
code a 500, and the server goes on.

Bound to the loopback (the default), it answers only requests whose Host
header names the loopback (localhost, 127.0.0.1, [::1]): a page on another
site that rebinds its own name to 127.0.0.1 (DNS rebinding) gets a 403,
not the user's model.
"""
import json
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from .explore_wire import MAX_BODY_BYTES, BadRequest, parse_body, pixels_of, unit_of

PAGE_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
              "/explore.css": ("explore.css", "text/css; charset=utf-8"),
              "/explore.js": ("explore.js", "text/javascript; charset=utf-8")}
IDLE_TIMEOUT_S = 10     # a connection that sends nothing for this long is closed
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def host_name(header):
    """The name in a Host header, without its port: "[::1]:8000" -> "::1"."""
    header = (header or "").strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def page_file(name):
    """The bytes of one of the page's files, from the package folder."""
    return resources.files("vis").joinpath("explore_page", name).read_bytes()


def data_script(data):
    """data.js: the page's data as one assignment (a script loads from file:// too)."""
    return f"window.EXPLORE = {json.dumps(data, separators=(',', ':'))};\n".encode()


class ExploreServer(ThreadingHTTPServer):
    """One explorer behind a fixed routing table; a thread per connection."""

    daemon_threads = True
    request_queue_size = 128      # a burst of local clients waits in the backlog instead of being refused

    def __init__(self, address, explorer):
        self.explorer = explorer
        self.get_routes = {path: (page_file(name), kind) for path, (name, kind) in PAGE_FILES.items()}
        self.get_routes["/data.js"] = (data_script(explorer.page_data()), "text/javascript; charset=utf-8")
        self.post_routes = {"/api/predict": self.predict, "/api/unit": self.unit}
        if ":" in address[0]:
            self.address_family = socket.AF_INET6        # --host ::1
        self.loopback_only = address[0] in LOOPBACK_NAMES
        super().__init__(address, Handler)

    def predict(self, request):
        e = self.explorer
        return e.predict(pixels_of(request, e.height, e.width))

    def unit(self, request):
        e = self.explorer
        image = pixels_of(request, e.height, e.width)
        layer, channel, select = unit_of(request, e.channels)
        return e.unit(image, layer, channel, select)

    def handle_error(self, request, client_address):
        """One line, not socketserver's traceback; a client that left
        before its answer was written is no error of the server's."""
        err = sys.exc_info()[1]
        if not isinstance(err, (ConnectionError, TimeoutError)):
            print(f"npcnn explore: error with a request from {client_address[0]}: {type(err).__name__}: "
                  f"{str(err).splitlines()[0] if str(err) else ''}", file=sys.stderr)

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"       # keep-alive: the page sends a request per stroke
    server_version = "npcnn-explore"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    # The headers and the body leave in two writes; with Nagle's algorithm the
    # second waits for the client's delayed ACK of the first: 40 ms a request.
    disable_nagle_algorithm = True

    def _foreign_host(self):
        """True (and a 403 sent) when a loopback server is asked under another name."""
        if not self.server.loopback_only or host_name(self.headers.get("Host")) in LOOPBACK_NAMES:
            return False
        self._send_json(HTTPStatus.FORBIDDEN, {"error": f"this server answers to localhost only, not to Host "
                                                        f"{str(self.headers.get('Host'))[:80]!r}"})
        return True

    def do_GET(self):
        if self._foreign_host():
            return
        route = self.server.get_routes.get(self.path.split("?", 1)[0])
        if route is None:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {self.path[:80]!r}"})
        else:
            self._send(HTTPStatus.OK, *route)

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        started = time.perf_counter()
        route = self.server.post_routes.get(self.path)
        try:
            body = self._body()
            if self._foreign_host():
                return
            if route is None:
                self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such request: {self.path[:80]!r}"})
                return
            answer = route(parse_body(body))
        except BadRequest as err:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(err)})
            return
        except (TimeoutError, ConnectionError):
            self.close_connection = True       # the client went quiet mid-body, or away: no one to answer
            return
        except Exception as err:  # noqa: BLE001 - the server's own fault: answer it, log it, go on
            line = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            print(f"npcnn explore: error answering {self.path}: {line}", file=sys.stderr)
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {line}"})
            return
        self._send_json(HTTPStatus.OK, answer, server_ms=1000 * (time.perf_counter() - started))

    def _body(self):
        """The request's bytes, checked for size before any is read."""
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self.close_connection = True       # where the body ends is unknown
            raise BadRequest("a Content-Length header (a number of bytes) is required")
        length = int(length)
        if length > MAX_BODY_BYTES:
            self.close_connection = True       # the body is left unread
            raise BadRequest(f"body of {length} bytes is over the limit of {MAX_BODY_BYTES}")
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            raise BadRequest(f"body ended after {len(body)} of the {length} bytes its Content-Length gives")
        return body

    def _send_json(self, status, answer, server_ms=None):
        extra = {} if server_ms is None else {"Server-Timing": f"explore;dur={server_ms:.3f}"}
        self._send(status, json.dumps(answer, separators=(",", ":")).encode(), "application/json", extra)

    def _send(self, status, body, kind, extra=None):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args):
        """Quiet: a line per request would bury the one line that says where it listens."""


def start(explorer, host="127.0.0.1", port=0):
    """A running server in a background thread (port 0: any free port);
    ``server.shutdown(); server.server_close()`` stops it."""
    server = ExploreServer((host, port), explorer)
    threading.Thread(target=server.serve_forever, name="npcnn-explore", daemon=True).start()
    return server


def serve(explorer, host="127.0.0.1", port=8000, started=None):
    """Serve until Ctrl-C, after one line saying where; ``started(server)``
    is called then (a test's way to stop it: ``server.shutdown()``)."""
    server = ExploreServer((host, port), explorer)
    scope = "this machine only" if host in ("127.0.0.1", "localhost", "::1") else "other machines too"
    print(f"npcnn explore: serving {explorer.model.arch} on {server.url} ({scope}; --host changes it); "
          f"Ctrl-C stops", flush=True)
    if started is not None:
        started(server)
    try:
        server.serve_forever()
    finally:
        server.server_close()
