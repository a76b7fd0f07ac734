# Imported by scaled_pooling.py through a relative import.

SCALE = 2.0
