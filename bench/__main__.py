"""``python -m bench`` from the repository root runs bench/run.py."""
from bench.run import main

main()
