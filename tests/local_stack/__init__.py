"""Tests of local/ fixes that need a moto of their own (no package-wide moto account around them)."""
