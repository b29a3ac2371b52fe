"""What the sandbox says when code reaches for something it cannot have.

Nothing can be installed in the sandbox: it has no network.  A model whose
first attempt fails with ModuleNotFoundError, or that starts with
`pip install`, needs to hear that, and what is here instead, to get its
second attempt right.  Two entry points, all reading
/opt/cip/hints/hints.json (only when needed, never at start-up):

- excepthook(): installed by sitecustomize; after the usual traceback of an
  uncaught ModuleNotFoundError it prints one "[sandbox] ..." line, and so
  for the few other errors hints.json lists (NLTK asking for its data).
- pip_main(): the `pip` and `pip3` on PATH (and `python3 -m pip`).  `list`,
  `freeze` and `show` answer from the installed packages' metadata;
  `install` reports what is already there ("Requirement already
  satisfied", exit 0) and, for anything missing, why it cannot come and
  what to use instead (exit 1).  Nothing is ever pretended to be installed.
"""
import sys

HINTS_FILE = "/opt/cip/hints/hints.json"

# pip names whose import name differs (Debian ships some without metadata).
IMPORT_NAMES = {
    "opencv-python": "cv2", "opencv-python-headless": "cv2", "opencv-contrib-python": "cv2",
    "pymupdf": "fitz", "scikit-learn": "sklearn", "sklearn": "sklearn",
    "scikit-image": "skimage", "pillow": "PIL", "beautifulsoup4": "bs4",
    "pyyaml": "yaml", "python-docx": "docx", "python-pptx": "pptx", "pypdf2": "PyPDF2",
    "pdfminer.six": "pdfminer", "python-dateutil": "dateutil", "pytz": "pytz",
    "msgpack-python": "msgpack", "python-levenshtein": "Levenshtein",
    "levenshtein": "Levenshtein", "python-bidi": "bidi", "odfpy": "odf",
    "attrs": "attr", "umap-learn": "umap", "faker": "faker", "fpdf2": "fpdf",
    "python-barcode": "barcode", "camelot-py": "camelot", "tabula-py": "tabula",
    "pandas-datareader": "pandas_datareader", "numpy-financial": "numpy_financial",
    "tables": "tables", "weasyprint": "weasyprint", "xgboost": "xgboost",
}


def _load():
    import json

    try:
        with open(HINTS_FILE, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def module_note(name):
    """The "[sandbox] ..." line for a module that failed to import."""
    top = name.split(".")[0]
    hints = _load()
    entry = hints.get("python", {}).get(top)
    if entry:
        return (f"[sandbox] {entry['package']} (module '{top}') is not installed here, and "
                f"nothing can be installed: the sandbox has no network. Instead: {entry['instead']}.")
    default = hints.get("python_default")
    if not default:
        return None
    return f"[sandbox] No module named '{top}': {default}"


def error_note(value):
    """The "[sandbox] ..." line for another error hints.json knows, or None."""
    for e in _load().get("python_errors", []):
        if type(value).__name__ == e.get("type") and e.get("contains", "") in str(value):
            return f"[sandbox] {e['note']}."
    return None


def excepthook(prior):
    """Wrap sys.excepthook: the traceback as usual, then the note."""
    def hook(tp, value, tb):
        prior(tp, value, tb)
        try:
            if isinstance(value, ModuleNotFoundError) and value.name:
                note = module_note(value.name)
            else:
                note = error_note(value)
        except Exception:  # a hint must never hide the real error
            note = None
        if note:
            sys.stderr.write(note + "\n")
    return hook


def _requirement_name(spec):
    """'pandas>=2.0' -> 'pandas', 'package[extra]' -> 'package'."""
    import re

    return re.split(r"[\s\[<>=!~;@]", spec.strip(), maxsplit=1)[0]


def _installed(name):
    """(import name, version or None) if the package is here, else None."""
    import importlib.metadata as md
    import importlib.util

    key = name.lower().replace("_", "-")
    mod = IMPORT_NAMES.get(key, name.replace("-", "_"))
    version = None
    try:
        version = md.version(name)
    except md.PackageNotFoundError:
        pass
    try:
        found = importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        found = False
    if found or version:
        return mod, version
    return None


def _pip_install(args):
    wanted = [a for a in args if not a.startswith("-")]
    if any(a in ("-r", "--requirement", "-e", "--editable") for a in args) or not wanted:
        print("pip: nothing can be installed in this sandbox: it has no network. "
              "pip list shows what is installed.", file=sys.stderr)
        return 1
    missing = []
    for spec in wanted:
        name = _requirement_name(spec)
        got = _installed(name)
        if got:
            print(f"Requirement already satisfied: {name} in /usr/lib/python3/dist-packages"
                  + (f" ({got[1]})" if got[1] else ""))
        else:
            missing.append(name)
    hints = _load().get("python", {})
    for name in missing:
        entry = hints.get(IMPORT_NAMES.get(name.lower(), name.lower().replace("-", "_")))
        print(f"ERROR: {name} cannot be installed: the sandbox has no network.", file=sys.stderr)
        if entry:
            print(f"[sandbox] Instead of {entry['package']}: {entry['instead']}.", file=sys.stderr)
    return 1 if missing else 0


def _pip_list(freeze):
    import importlib.metadata as md

    seen = {}
    for d in md.distributions():
        name = d.metadata["Name"]
        if name and name.lower() not in seen:
            seen[name.lower()] = (name, d.version)
    rows = sorted(seen.values(), key=lambda r: r[0].lower())
    if freeze:
        for name, version in rows:
            print(f"{name}=={version}")
        return 0
    width = max([len(r[0]) for r in rows] + [7])
    print(f"{'Package':<{width}} Version")
    print(f"{'-' * width} -------")
    for name, version in rows:
        print(f"{name:<{width}} {version}")
    return 0


def _pip_show(args):
    rc = 0
    for name in (a for a in args if not a.startswith("-")):
        got = _installed(name)
        if not got:
            print(f"WARNING: Package(s) not found: {name}", file=sys.stderr)
            rc = 1
            continue
        print(f"Name: {name}\nVersion: {got[1] or 'unknown (Debian package)'}\n"
              f"Location: /usr/lib/python3/dist-packages\n---")
    return rc


def pip_main(argv):
    """`pip ARGS`: read-only answers; installing is refused with the reason."""
    cmd = next((a for a in argv if not a.startswith("-")), None)
    if "--version" in argv or "-V" in argv:
        print("pip (code-interpreter sandbox: lists packages, installs none; no network)")
        return 0
    rest = argv[argv.index(cmd) + 1:] if cmd else []
    if cmd == "install":
        return _pip_install(rest)
    if cmd in ("list", "freeze"):
        return _pip_list(cmd == "freeze")
    if cmd == "show":
        return _pip_show(rest)
    print("pip: only list, freeze and show work in this sandbox; nothing can be installed "
          "or removed (no network).", file=sys.stderr)
    return 1
