"""Lägesbild: a shared situational picture for local safety forums."""
