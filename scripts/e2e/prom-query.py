#!/usr/bin/env python3
"""Query a Prometheus server's HTTP API and write the answers as JSON (stdlib only).

    prom-query.py http://127.0.0.1:9090 OUT.json 'EXPR' ['EXPR' ...]

OUT.json: {"EXPR": [{"metric": {...}, "value": 1.0}, ...], ...}; an expression Prometheus refused maps to
{"error": "..."}. Exit 1 when the server cannot be reached.
"""
import json
import sys
import urllib.error
import urllib.parse
import urllib.request


def query(base, expr):
    url = base.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        return {"error": f"HTTP {e.code}: {e.read().decode(errors='replace')[:300]}"}
    if body.get("status") != "success":
        return {"error": body.get("error", "unknown error")}
    data = body["data"]
    if data["resultType"] == "scalar":
        return [{"metric": {}, "value": float(data["result"][1])}]
    return [{"metric": s["metric"], "value": float(s["value"][1])} for s in data["result"]]


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    base, out, exprs = sys.argv[1], sys.argv[2], sys.argv[3:]
    try:
        answers = {e: query(base, e) for e in exprs}
    except (urllib.error.URLError, OSError) as e:
        print(f"prom-query: cannot reach {base}: {e}", file=sys.stderr)
        sys.exit(1)
    with open(out, "w") as f:
        json.dump(answers, f, indent=1)


if __name__ == "__main__":
    main()
