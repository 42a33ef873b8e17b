"""Phase 1 graded checks: recurrent cells, stacked RNNs, manual BPTT, a classifier, metrics."""
