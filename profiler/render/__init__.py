"""Rendering for people: tables (text, Markdown, CSV, JSON), the analyze and report documents, and plots."""
