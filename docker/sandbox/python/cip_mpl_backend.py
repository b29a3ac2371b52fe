"""matplotlib backend of the sandbox: Agg, whose show() saves the figures.

There is no display in the sandbox.  Code written for a notebook ends with a
bare plt.show(); with plain Agg that would draw nothing and warn.  Here
show() saves every open figure as plot_<n>.png in the working directory
(never overwriting an earlier plot), then closes them, so the proxy picks
the PNGs up as outputs.  Selected by MPLBACKEND=module://cip_mpl_backend.
"""
import os

from matplotlib._pylab_helpers import Gcf
from matplotlib.backend_bases import _Backend
from matplotlib.backends.backend_agg import _BackendAgg


def next_free(prefix, suffix):
    """The first prefix<n>suffix that does not exist yet, n from 0."""
    n = 0
    while os.path.lexists(f"{prefix}{n}{suffix}"):
        n += 1
    return f"{prefix}{n}{suffix}"


@_Backend.export
class _BackendCip(_BackendAgg):
    @classmethod
    def show(cls, *args, **kwargs):
        for manager in Gcf.get_all_fig_managers():
            manager.canvas.figure.savefig(next_free("plot_", ".png"))
        Gcf.destroy_all()
