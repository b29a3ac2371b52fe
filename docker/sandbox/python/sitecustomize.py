"""Sandbox start-up hook of every Python run.

- plotly's fig.show() writes an HTML file.  plotly would try to open a
  browser, which the sandbox has not.  When (and only when) user code
  imports plotly.io, a renderer is registered that writes the figure as a
  self-contained plot_<n>.html in the working directory, for the proxy to
  pick up.
- matplotlib starts from the font list built into the image: when (and
  only when) it is first imported in a sandbox, the list is copied into
  the empty MPLCONFIGDIR, instead of matplotlib scanning every font anew
  (seconds, with the image's fonts); and every font lookup falls back to
  the image's fonts for other scripts, so a title in Japanese or Hindi is
  not drawn as boxes (cip_mpl_fonts).
- pandas accepts Debian's xlrd 1.2.0 for .xls files (_accept_debian_xlrd).
- An uncaught ModuleNotFoundError ends with a note saying that nothing can
  be installed here and what to use instead; `python3 -m pip` is the
  sandbox's pip (cip_hints).

Code that imports none of these pays nothing but the finder classes.
"""
import os
import sys


class _AfterImport:
    """Call then(module) once `name` has been imported, if it ever is."""

    def __init__(self, name, then):
        self.name, self.then = name, then

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        load, then = spec.loader.exec_module, self.then

        def exec_module(module):
            load(module)
            then(module)

        spec.loader.exec_module = exec_module
        return spec


def _register(pio):
    try:
        from plotly.io._base_renderers import ExternalRenderer
    except ImportError:
        return

    class HtmlFileRenderer(ExternalRenderer):
        def render(self, fig_dict):
            import os

            n = 0
            while os.path.lexists(f"plot_{n}.html"):
                n += 1
            # Inline plotly.js: the file must work with no network.
            pio.write_html(fig_dict, f"plot_{n}.html", include_plotlyjs=True, auto_open=False)

    pio.renderers["cip_html"] = HtmlFileRenderer()
    pio.renderers.default = "cip_html"


class _MatplotlibFontCache:
    """Seed MPLCONFIGDIR with the image's font list before matplotlib loads."""

    SOURCE = "/opt/cip/matplotlib"

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "matplotlib":
            sys.meta_path.remove(self)
            _seed_font_cache(self.SOURCE, os.environ.get("MPLCONFIGDIR"))
        return None


def _seed_font_cache(source, dest):
    if not dest:
        return
    try:
        names = [n for n in os.listdir(source) if n.startswith("fontlist-")]
        os.makedirs(dest, exist_ok=True)
        for n in names:
            target = os.path.join(dest, n)
            if not os.path.exists(target):
                with open(os.path.join(source, n), "rb") as f:
                    data = f.read()
                tmp = f"{target}.{os.getpid()}.tmp"
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, target)
    except OSError:
        pass  # matplotlib then builds its own list, as it would anyway


def _run_pip_module():
    """`python3 -m pip ...` runs the sandbox's pip (there is no real one).

    Read from sys.orig_argv, before the interpreter looks for the module;
    os._exit because site's import is no place for SystemExit.
    """
    argv = getattr(sys, "orig_argv", [])
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "-m":
            if i + 1 < len(argv) and argv[i + 1] in ("pip", "pip3"):
                import importlib.util

                if importlib.util.find_spec("pip") is not None:
                    return  # a derived image installed the real pip
                import cip_hints

                rc = cip_hints.pip_main(argv[i + 2:])
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(rc)
            return
        if not a.startswith("-") or a == "-c" or a == "-":
            return
        i += 2 if a in ("-W", "-X") else 1


def _install_excepthook():
    prior = sys.excepthook

    def hook(tp, value, tb):
        import cip_hints

        cip_hints.excepthook(prior)(tp, value, tb)

    sys.excepthook = hook


def _font_fallback(fm):
    import cip_mpl_fonts

    cip_mpl_fonts.install(fm)


def _accept_debian_xlrd(optional):
    """pandas reads .xls with the xlrd that Debian ships.

    pandas 1.5 asks for xlrd >= 2.0.1 because 2.0 dropped .xlsx, which
    pandas reads with openpyxl anyway; bookworm's xlrd 1.2.0 reads .xls
    as well as 2.0 does, so read_excel("old.xls") need not fail on it.
    """
    versions = getattr(optional, "VERSIONS", None)
    if isinstance(versions, dict) and "xlrd" in versions:
        versions["xlrd"] = "1.2.0"


sys.meta_path.insert(0, _AfterImport("plotly.io", _register))
sys.meta_path.insert(0, _AfterImport("pandas.compat._optional", _accept_debian_xlrd))
sys.meta_path.insert(0, _AfterImport("matplotlib.font_manager", _font_fallback))
sys.meta_path.insert(0, _MatplotlibFontCache())
_install_excepthook()
_run_pip_module()
