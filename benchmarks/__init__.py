"""MedLedger benchmarks: plain functions returning numbers (see each module)."""
