"""Automation: jobs, schedules and sensors, thin: they decide in core and read metadata only."""
