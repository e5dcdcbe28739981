"""Static file server for the demo page: python3 serve.py DIR [BIND] [PORT]  (default 127.0.0.1 8000).

Serves DIR (the harness stages web/*, /deepfake-guard.mjs and /javascript -> /usr/share/javascript there) with
JavaScript MIME types for .js/.mjs (module scripts need one) and no caching, so an edited page is always fresh.
"""
import functools
import http.server
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".map": "application/json"}

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))


def main():
    root = sys.argv[1]
    bind = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 8000
    httpd = http.server.ThreadingHTTPServer((bind, port), functools.partial(Handler, directory=root))
    print(f"serving {root} on http://{bind}:{port}/", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
