"""Many calls: sweeps over a grid, their plan, dispatch, progress, and the Batch API."""
