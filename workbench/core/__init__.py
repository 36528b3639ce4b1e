"""The bottom floor: plain values and checks that import nothing of the workbench above them."""
