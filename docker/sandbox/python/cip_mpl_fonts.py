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

    def find_with_fallback(self, prop, fontext="ttf", *args, **kwargs):
        paths = original(self, prop, fontext, *args, **kwargs)
        if fontext != "ttf":
            return paths
        prop = fm.FontProperties._from_any(prop)
        for family in FALLBACK:
            extra = prop.copy()
            extra.set_family(family)
            try:
                path = self.findfont(extra, fontext, fallback_to_default=False)
            except ValueError:
                continue  # not in this image (a derived one may lack it)
            if path not in paths:
                paths.append(path)
        return paths

    find_with_fallback.cip_fallback = True
    fm.FontManager._find_fonts_by_props = find_with_fallback
