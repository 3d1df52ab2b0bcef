"""Elaboration to Verilog + manifests, the generator registry, the CLI and the synthesis flows."""
