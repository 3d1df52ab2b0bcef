"""Number formats and bit-exact numpy golden models: the specification (numpy and ml_dtypes only)."""
