"""Compliance data files (framework control lists and mapping tables); a package so they ship in the wheel."""
