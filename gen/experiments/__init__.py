"""Experiments that exercise the golden models end to end (the evidence behind the README's claims).

- :mod:`tensorforge.gen.experiments.flexpoint` -- trains a 64-64-10 MLP on scikit-learn's digits in FP32,
  FP16 (no loss scaling) and flex16+5 with Autoflex; ``run(epochs, seed, out_dir)``.
"""
