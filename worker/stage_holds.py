"""Stage holds: an operator's (or a drill's) way to stop every job before a named stage.

A stop, a crash or a deploy must be safe whatever stage a job is in. To rehearse that on
purpose, and for the chaos tests to prove it without depending on how fast a job runs, a
file ``<data dir>/holds/<stage>`` holds each job that reaches ``<stage>`` until the file is
removed. The stages are the pipeline's, named as its timings name them (``fetch``,
``decode``, ``asr``, ``diarization``, ``assembly``, ``analysis``), and ``store``: the
commit of the result. A held job says so in
the worker's log, once, and goes on stamping its heartbeat, so it is neither lost nor
failed; it can be cancelled or handed back while it waits, like a job that is working.

Without the folder nothing is held: one ``stat`` per stage is all a job pays.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: The stages a hold can name, in the order a job meets them.
STAGES = ("fetch", "decode", "asr", "diarization", "assembly", "analysis", "store")
#: How often a held job looks whether it may go on.
POLL_S = 0.05


def hold_path(data_dir: Path, stage: str) -> Path:
    """The file that holds every job of this data directory before ``stage``."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}: one of {', '.join(STAGES)}")
    return data_dir / "holds" / stage


def hold_if_asked(data_dir: Path, transcription_id: str, stage: str) -> None:
    """Wait while the hold file of ``stage`` exists."""
    path = hold_path(data_dir, stage)
    if not path.exists():
        return
    log.warning("transcription %s held before stage %s by %s: remove the file to let it go "
                "on", transcription_id, stage, path)
    while path.exists():
        time.sleep(POLL_S)  # a stop's interruption lands here, as in any stage
    log.info("transcription %s released before stage %s", transcription_id, stage)
