"""The bottom layer: plain values and pure rules, no I/O."""
