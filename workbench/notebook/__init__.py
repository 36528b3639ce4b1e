"""The notebook front end (the top floor): magics, widgets, panels, views and plots."""
