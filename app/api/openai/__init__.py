"""OpenAI's audio API: ``POST /v1/audio/transcriptions``, ``POST /v1/audio/translations`` and
``GET /v1/models``, so OpenAI SDKs and every tool with an "OpenAI" node and a base-URL
setting work against Voxhook unchanged.

- :mod:`.form` reads OpenAI's multipart fields into what the transcription service takes;
- :mod:`.render` turns a completed transcription into each ``response_format``;
- :mod:`.errors` answers OpenAI's error shape and status codes;
- :mod:`.routes` holds the views (synchronous: they answer when the job ends, or stream).
"""
