"""Teachers' test questions: which source should answer each, re-checked in the background after every change."""
