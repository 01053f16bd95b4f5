"""The orchestration of one sharing request, and nothing else."""
