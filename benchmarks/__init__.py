"""MedLedger benchmarks (`make bench`): not part of the product package."""
