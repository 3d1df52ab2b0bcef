"""Amaranth 0.5 hardware components (synthesizable only); imports Amaranth and golden.formats."""
