"""The speech pipeline: decode, transcribe, diarize, assemble; the model cache."""
