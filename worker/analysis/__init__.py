"""AI analysis of a finished transcript by the operator's OpenAI-compatible chat endpoint
(:mod:`worker.analysis.runner`)."""
