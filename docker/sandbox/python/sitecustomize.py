"""Sandbox start-up hook: plotly's fig.show() writes an HTML file.

plotly would try to open a browser, which the sandbox has not.  When (and
only when) user code imports plotly.io, a renderer is registered that
writes the figure as a self-contained plot_<n>.html in the working
directory, for the proxy to pick up.  Importing plotly is not made any
slower, and code that never imports it pays nothing but this class.
"""
import sys


class _PlotlyShowToHtml:
    def find_spec(self, fullname, path=None, target=None):
        if fullname != "plotly.io":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            _register(module)

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


sys.meta_path.insert(0, _PlotlyShowToHtml())
