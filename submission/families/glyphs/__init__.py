"""The glyph family: CJK characters from a class table (glyph_table.json) and system fonts."""
