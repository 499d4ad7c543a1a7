"""What is evaluated: a protocol (families and their parameters), per-image evaluation into record
tables, and aggregation of records into dataset metrics. Pure: no model, no run folder."""
