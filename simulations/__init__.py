"""Whole federations of simulated institutions on one machine (Flower's Simulation Engine)."""
