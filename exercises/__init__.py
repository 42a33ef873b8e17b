"""Your work: one module per phase. Grade with make grade PHASE=n."""
