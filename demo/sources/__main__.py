"""Run the demo source systems on their own: ``python -m demo.sources [--dir DIR]``.

Prints where each source listens and the bound datasets, then serves until interrupted.
(``broker serve --demo`` starts the same sources inside the gateway's process.)
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from demo.sources import subjects
from demo.sources.runtime import start_demo_sources


def _stop(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    parser = argparse.ArgumentParser(description="Serve the Calderbridge demo source systems.")
    parser.add_argument("--dir", type=Path, default=None, help="where to write databases")
    args = parser.parse_args()
    with start_demo_sources(args.dir) as demo:
        print(f"NHS FHIR R4 server (R9Z):   {demo.fhir_url}")
        print(f"Police concerns service:    {demo.police_url}")
        print(f"Council databases, documents: {demo.root}")
        print(f"Council webhook receiver:   {demo.webhook_receiver.url} (GET /received)")
        for binding in demo.bindings:
            print(f"  {binding.dataset:28} {binding.source.kind:9} {binding.source.endpoint}")
        for subject in subjects.ALL_SUBJECTS:
            print(f"  {subject.label:42} NHS {subject.nhs_number}  {subject.person_id}")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping")


if __name__ == "__main__":
    main()
