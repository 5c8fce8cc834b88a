"""Every figure the dashboard shows, as a plain function DataFrame -> plotly Figure (tests call them)."""
