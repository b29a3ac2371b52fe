#!/usr/bin/env python3
"""What the sandbox image has, as README's "What is installed" section.

    python3 tests/e2e/inventory.py [IMAGE]     # print the section for IMAGE

(paste its output between README's "inventory" markers).
The probe (PROBE, a Python program) runs in the sandbox as user code does
and reports, as JSON, the version of every package, tool and Node module
listed below, and the font that covers each script.  markdown() renders
that report; test_installed.py runs the probe through the proxy and fails
when README's section differs from what the image has, so README is
generated from the image, never written by hand.  A name listed here that
the image lacks makes the probe report it missing, and the test fail.
"""
import json
import os
import subprocess
import sys

# Python: (group, [(import name, distribution name or None)]).  The version
# comes from the distribution's metadata, else the module's __version__.
PYTHON = [
    ("data and science", [
        ("numpy", None), ("pandas", None), ("scipy", None), ("sympy", None),
        ("statsmodels", None), ("patsy", None), ("numexpr", None), ("bottleneck", "Bottleneck"),
        ("numba", None), ("xarray", None), ("tables", None), ("h5py", None), ("pint", "Pint"),
        ("mpmath", None), ("cvxopt", None), ("pulp", "PuLP"), ("networkx", None),
        ("igraph", None)]),
    ("machine learning", [
        ("sklearn", "scikit-learn"), ("xgboost", None), ("imblearn", "imbalanced-learn"),
        ("joblib", None)]),
    ("charts and maps", [
        ("matplotlib", None), ("seaborn", None), ("plotly", None), ("altair", None),
        ("matplotlib_venn", "matplotlib-venn"), ("wordcloud", None), ("folium", None),
        ("graphviz", None), ("pydot", None), ("geopandas", None), ("shapely", None),
        ("pyproj", None), ("rtree", "Rtree")]),
    ("documents and PDF", [
        ("docx", "python-docx"), ("openpyxl", None), ("xlsxwriter", "XlsxWriter"),
        ("xlrd", None), ("odf", "odfpy"), ("reportlab", None), ("pypdf", None),
        ("PyPDF2", None), ("fitz", "PyMuPDF"), ("pdfminer", "pdfminer.six"), ("pikepdf", None),
        ("img2pdf", None), ("weasyprint", None), ("markdown", "Markdown"), ("markdown2", None),
        ("ebooklib", "EbookLib"), ("pypandoc", None), ("docutils", None), ("jinja2", "Jinja2"),
        ("tabulate", None)]),
    ("images, vision and sound", [
        ("PIL", "Pillow"), ("cv2", None), ("skimage", "scikit-image"), ("imageio", None),
        ("tifffile", None), ("cairosvg", "CairoSVG"), ("svgwrite", None), ("qrcode", None),
        ("segno", None), ("pyzbar", None), ("pydub", None), ("soundfile", None)]),
    ("text, web and formats", [
        ("bs4", "beautifulsoup4"), ("lxml", None), ("html5lib", None), ("html2text", None),
        ("yaml", "PyYAML"), ("toml", None), ("xmltodict", None), ("jsonschema", None),
        ("pydantic", None), ("chardet", None), ("regex", None), ("unidecode", "Unidecode"),
        ("Levenshtein", None), ("emoji", None), ("arabic_reshaper", "arabic-reshaper"),
        ("bidi", "python-bidi"), ("nltk", None), ("pygments", "Pygments"),
        ("msgpack", None), ("simplejson", None)]),
    ("everyday helpers", [
        ("dateutil", "python-dateutil"), ("pytz", None), ("babel", "Babel"), ("holidays", None),
        ("icalendar", None), ("pycountry", None), ("natsort", None), ("dill", None),
        ("tqdm", None), ("rich", None), ("psutil", None), ("requests", None),
        ("sqlalchemy", "SQLAlchemy")]),
]

# Tools: (command, version argv, what for[, pattern]).  The version is the
# first dotted number in the output, or what pattern's group 1 matches.
TOOLS = [
    ("soffice", ["soffice", "--version"], "LibreOffice, headless: soffice --headless --convert-to pdf|docx|xlsx|pptx"),
    ("pandoc", ["pandoc", "--version"], "documents between formats; PDF through pdflatex or --pdf-engine=weasyprint"),
    ("pdflatex", ["pdflatex", "--version"], "TeX Live's LaTeX (latex-recommended), for pandoc's PDFs",
     r"TeX Live (\d{4})"),
    ("weasyprint", ["weasyprint", "--version"], "HTML and CSS to PDF"),
    ("pdftotext", ["pdftotext", "-v"], "poppler-utils: pdftotext, pdfinfo, pdftoppm, pdfimages, pdffonts"),
    ("qpdf", ["qpdf", "--version"], "PDF structure: merge, split, decrypt"),
    ("gs", ["gs", "--version"], "Ghostscript"),
    ("tesseract", ["tesseract", "--version"], "OCR, with English data"),
    ("ffmpeg", ["ffmpeg", "-version"], "audio and video; ffprobe too"),
    ("convert", ["convert", "-version"], "ImageMagick (PDF reading and writing allowed)"),
    ("rsvg-convert", ["rsvg-convert", "--version"], "SVG to PNG or PDF"),
    ("dot", ["dot", "-V"], "Graphviz"),
    ("sqlite3", ["sqlite3", "--version"], "SQLite's shell"),
    ("jq", ["jq", "--version"], "JSON on the command line"),
    ("zip", ["zip", "-v"], "zip and unzip; xz, bzip2, gzip, tar"),
    ("file", ["file", "--version"], "file types by content"),
    ("bc", ["bc", "--version"], "arbitrary-precision calculator"),
    ("pip", ["pip", "--version"], "the sandbox's pip: list, freeze, show; installs nothing (no network)",
     r"^pip \(([^:]+):"),
]

# Scripts, the fontconfig language that proves a font covers them, and the
# fonts README names for them (the first of those present, else the first
# Noto Sans, DejaVu Sans or Droid font that covers the language).
FONTS = [
    ("Latin, Greek, Cyrillic", "ru", ["DejaVu Sans", "Noto Sans"]),
    ("Chinese (simplified)", "zh-cn", ["Noto Sans CJK SC", "Droid Sans Fallback"]),
    ("Chinese (traditional)", "zh-tw", ["Noto Sans CJK TC", "Droid Sans Fallback"]),
    ("Japanese", "ja", ["Noto Sans CJK JP", "Droid Sans Fallback"]),
    ("Korean", "ko", ["Noto Sans CJK KR"]), ("Arabic", "ar", ["Noto Sans Arabic", "DejaVu Sans"]),
    ("Hebrew", "he", ["Noto Sans Hebrew", "DejaVu Sans"]),
    ("Devanagari (Hindi)", "hi", ["Noto Sans Devanagari"]), ("Bengali", "bn", ["Noto Sans Bengali"]),
    ("Tamil", "ta", ["Noto Sans Tamil"]), ("Thai", "th", ["Noto Sans Thai"]),
]

NODE_DIR = "/opt/cip/node/node_modules"

PROBE = r'''
import importlib, importlib.metadata as md, json, os, re, subprocess, sys
spec = json.loads(sys.argv[1])
out = {"python": {}, "tools": {}, "node": {}, "fonts": {}, "metric": {}, "missing": []}
out["python_version"] = sys.version.split()[0]
def clean(v):
    """'1:2.8.4+dfsg-1' -> '2.8.4'; None for no version, or a placeholder."""
    v = re.sub(r"^\d+:", "", str(v or ""))
    v = re.split(r"[+~]", v.rsplit("-", 1)[0] if "-" in v else v)[0]
    return v if re.match(r"^\d+(\.\d+)*$", v) and v not in ("0.0.0", "999") else None
def metadata_version(*names):
    for name in filter(None, names):
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            pass
    return None
paths, found = {}, {}
for group, mods in spec["python"]:
    for mod, dist in mods:
        try:
            m = importlib.import_module(mod)
        except Exception as e:
            out["missing"].append(f"python {mod}: {type(e).__name__}: {e}")
            continue
        paths[mod] = os.path.realpath(m.__file__)
        found[mod] = [metadata_version(dist, mod), getattr(m, "__version__", None)]
# Some Debian packages' metadata says 0.0.0 or 999, or nothing: then the
# package that ships the module has it (one dpkg -S, one dpkg-query).
owner = {}
r = subprocess.run(["dpkg", "-S", *paths.values()], capture_output=True, text=True)
for line in r.stdout.splitlines():
    pkg, _, path = line.partition(": ")
    owner[path] = pkg.split(":")[0]
r = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n",
                    *sorted(set(owner.values()))], capture_output=True, text=True)
deb = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
for mod, candidates in found.items():
    candidates.append(deb.get(owner.get(paths[mod])))
    out["python"][mod] = next((c for c in map(clean, candidates) if c), "?")
for cmd, argv, _, pattern in spec["tools"]:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        text = r.stdout + r.stderr
        m = re.search(pattern, text)
        out["tools"][cmd] = (m.group(1) if m.groups() else m.group(0)) if m else "?"
    except (OSError, subprocess.TimeoutExpired) as e:
        out["missing"].append(f"tool {cmd}: {e}")
pkg = json.load(open(os.path.join(spec["node_dir"], "..", "package.json")))
for name in sorted(pkg["dependencies"]):
    try:
        out["node"][name] = json.load(open(os.path.join(spec["node_dir"], name, "package.json")))["version"]
    except OSError as e:
        out["missing"].append(f"node {name}: {e}")
for script, lang, prefer in spec["fonts"]:
    fams = subprocess.run(["fc-list", f":lang={lang}", "family"], capture_output=True,
                          text=True).stdout.split("\n")
    fams = {name.strip() for f in fams for name in f.split(",") if name.strip()}
    pick = ([f for f in prefer if f in fams] or
            sorted(f for f in fams if f.startswith(("Noto Sans", "DejaVu Sans", "Droid"))) or
            sorted(fams))
    if pick:
        out["fonts"][script] = pick[0] if len(pick) == 1 else ", ".join(pick[:2])
    else:
        out["missing"].append(f"font for {script} ({lang})")
for fam in ("Liberation Sans", "Liberation Serif", "Carlito", "Caladea", "Noto Color Emoji", "Symbola"):
    got = subprocess.run(["fc-list", f"{fam}", "family"], capture_output=True, text=True).stdout
    if fam in got:
        out["metric"][fam] = True
    else:
        out["missing"].append(f"font {fam}")
print(json.dumps(out))
'''


def probe_spec():
    """The argument PROBE takes: everything README lists."""
    tools = [(*t, r"\d+\.\d+(?:\.\d+)?") if len(t) == 3 else t for t in TOOLS]
    return json.dumps({"python": PYTHON, "tools": tools, "fonts": FONTS, "node_dir": NODE_DIR})


def markdown(inv):
    """README's section, from the probe's report."""
    lines = [f"Python {inv['python_version']}, with these packages (import name and version):", "",
             "| for | packages |", "|---|---|"]
    for group, mods in PYTHON:
        cells = ", ".join(f"`{m}` {inv['python'].get(m, 'MISSING')}" for m, _ in mods)
        lines.append(f"| {group} | {cells} |")
    lines += ["", "Node packages, found by `require` and `import` from anywhere "
              "(`/node_modules`):", "",
              ", ".join(f"`{n}` {v}" for n, v in sorted(inv["node"].items())), "",
              "| tool | version | for |", "|---|---|---|"]
    for cmd, _, what, *_ in TOOLS:
        lines.append(f"| `{cmd}` | {inv['tools'].get(cmd, 'MISSING')} | {what} |")
    lines += ["", "| script | font |", "|---|---|"]
    for script, *_ in FONTS:
        lines.append(f"| {script} | {inv['fonts'].get(script, 'MISSING')} |")
    lines += ["", "Also " + ", ".join(sorted(inv["metric"])) + " (Liberation and Carlito/Caladea "
              "keep the layout of documents set in Arial, Times New Roman, Calibri and Cambria)."]
    return "\n".join(lines) + "\n"


HINTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docker",
                     "sandbox", "hints", "hints.json")


def load_hints():
    with open(HINTS, encoding="utf-8") as f:
        return json.load(f)


def not_installed_markdown(hints):
    """README's table of what cannot be had, from the image's hints.json."""
    lines = ["| missing | Python module | what to use instead (the note a failed import prints) |",
             "|---|---|---|"]
    for mod, e in sorted(hints["python"].items(), key=lambda kv: kv[0].lower()):
        lines.append(f"| {e['package']} | `{mod}` | {e['instead']} |")
    lines += ["", "| missing | Node package | what to use instead |", "|---|---|---|"]
    for name, e in sorted(hints["node"].items()):
        lines.append(f"| {e['package']} | `{name}` | {e['instead']} |")
    return "\n".join(lines) + "\n"


def section(inv, hints):
    """The whole generated part of README, between its two markers."""
    return (markdown(inv) + "\nNot installed, and what to use instead: these have no Debian "
            "package (pip is left out on purpose), and nothing can be installed at run time (no "
            "network). Code that imports one "
            "gets its traceback as usual, then a `[sandbox] ...` line with the advice below; "
            "`pip install` says the same.\n\n" + not_installed_markdown(hints))


def run_in_image(image):
    """The probe in IMAGE as the sandbox user, with the proxy's environment."""
    env = ["-e", "HOME=/mnt/data", "-e", "PYTHONPATH=/opt/cip/python",
           "-e", "MPLCONFIGDIR=/tmp/.matplotlib", "-e", "MPLBACKEND=module://cip_mpl_backend"]
    r = subprocess.run(["docker", "run", "--rm", "--network", "none", "--user", "1000:1000",
                        "--tmpfs", "/mnt/data:mode=1777", "--tmpfs", "/tmp:mode=1777", *env,
                        "--entrypoint", "python3", image, "-c", PROBE, probe_spec()],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        sys.exit(f"probe failed: {r.stderr}")
    return json.loads(r.stdout)


if __name__ == "__main__":
    inv = run_in_image(sys.argv[1] if len(sys.argv) > 1 else
                       os.environ.get("CI_SANDBOX_IMAGE", "code-interpreter-sandbox:latest"))
    for m in inv["missing"]:
        print(f"MISSING: {m}", file=sys.stderr)
    sys.stdout.write(section(inv, load_hints()))
