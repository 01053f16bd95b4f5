"""The governance console at /console: server-rendered pages for officers."""
