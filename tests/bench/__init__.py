"""The benchmark suite (`python -m tests.bench`): ratios against the best tool for each job.

Not collected by pytest (no `test_*` modules): nothing in the test suite depends on timing.
"""
