"""What every layer of the library shares: the clock, JSON values, formatting, column names,
metrics, secrets masking, the machine (environment), folders and test-only pause points."""
