"""Rigs shared by several test modules (and the benchmarks), so test modules never import each other."""
