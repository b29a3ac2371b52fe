"""Glyph fallback for matplotlib, whatever font family the code asks for.

matplotlib 3.6 falls back from font to font only across the families named
in font.family.  The usual value is one generic family ("sans-serif", also
what seaborn's set_theme() sets), and that resolves to a single font,
DejaVu Sans, which has no CJK, Devanagari or Thai glyphs: a chart titled in
Japanese came out as boxes.  install() makes every font lookup end with the
image's fonts for other scripts, so Agg, PDF, PS and SVG find a glyph
wherever the image has one.  The fonts the code chose still come first and
set the metrics; the fallbacks are used only for glyphs those lack.

sitecustomize calls install() when user code imports matplotlib.font_manager.
"""

# Most specific script first; Noto Sans CJK before Droid Sans Fallback, the
# same CJK coverage in a lighter style that stands in if the first is gone.
FALLBACK = ("Noto Sans CJK JP", "Droid Sans Fallback", "Noto Sans Devanagari",
            "Noto Sans Bengali", "Noto Sans Tamil", "Noto Sans Thai", "Noto Sans Arabic",
            "Noto Sans Hebrew", "Noto Sans", "Symbola")


def install(fm):
    """Wrap fm.FontManager._find_fonts_by_props (once) to append FALLBACK."""
    original = fm.FontManager._find_fonts_by_props
    if getattr(original, "cip_fallback", False):
        return
    picked = {}   # (style, weight) -> fallback paths

    def find_with_fallback(self, prop, fontext="ttf", *args, **kwargs):
        paths = original(self, prop, fontext, *args, **kwargs)
        if fontext != "ttf":
            return paths
        prop = fm.FontProperties._from_any(prop)
        key = (prop.get_style(), _weight(fm, prop.get_weight()))
        if key not in picked:
            picked[key] = _fallback_paths(fm, self.ttflist, *key)
        return paths + [p for p in picked[key] if p not in paths]

    find_with_fallback.cip_fallback = True
    fm.FontManager._find_fonts_by_props = find_with_fallback


def _weight(fm, w):
    return w if isinstance(w, int) else fm.weight_dict.get(w, 400)


def _fallback_paths(fm, ttflist, style, weight):
    """Each FALLBACK family's face nearest to style and weight.

    Picked from the font list directly: findfont would score every font in
    the image (some 475) once per family and per text size, tens of
    milliseconds a chart.
    """
    faces = {}
    for entry in ttflist:
        if entry.name in FALLBACK:
            faces.setdefault(entry.name, []).append(entry)
    paths = []
    for family in FALLBACK:
        if family in faces:  # a derived image may lack some
            best = min(faces[family], key=lambda e: (e.style != style,
                                                     abs(_weight(fm, e.weight) - weight)))
            paths.append(best.fname)
    return paths
