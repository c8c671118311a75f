"""`make bench`: k6 scenarios (``*.js``) and their driver (``bench.py``)."""
