"""Diagnosis: the evidence a run hands over (:mod:`~gradcheck.diagnosis.evidence`) and the
bug-class detectors that read it (:mod:`~gradcheck.diagnosis.detectors`)."""

from gradcheck.diagnosis.detectors import RUN_DETECTORS, TENSOR_DETECTORS, diagnose

__all__ = ["RUN_DETECTORS", "TENSOR_DETECTORS", "diagnose"]
