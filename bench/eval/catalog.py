"""Every fault of the eval, in the order the suite runs them."""

from __future__ import annotations

from bench.eval import faults_classic, faults_files, faults_net, faults_procs
from bench.eval.harness import FaultSpec

FAULTS: list[FaultSpec] = [
    *faults_classic.FAULTS,
    *faults_net.FAULTS,
    *faults_files.FAULTS,
    *faults_procs.FAULTS,
]
BY_NAME = {f.name: f for f in FAULTS}
assert len(BY_NAME) == len(FAULTS), "fault names must be unique"
