"""Exhaustive checks at native Verilator speed (C++ driver + chunked numpy golden comparison)."""
