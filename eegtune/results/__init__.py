"""What studies yield: evaluation on the test set, the comparison table, statistics, the report
and its charts. Empty on purpose: import the module you need.
"""
