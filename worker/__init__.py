"""Voxhook's worker: the RQ worker process and the speech pipeline it runs.

fetch → decode → transcribe → assemble, each in its own module; ``jobs`` ties a queued
transcription to the pipeline and the database. Nothing here imports Flask.
"""
