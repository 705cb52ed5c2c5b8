"""Predictions on request (`overnight serve`): requests parsed as MLflow's scoring protocol, scored
as the night scores files, journaled on disk before the answer leaves, then loaded into SQL."""
