"""Phase 7 — convolutional networks and a ResNet in NumPy: the graded checks.

Every layer is compared with torch (F.conv2d, F.max_pool2d, F.avg_pool2d, F.batch_norm,
F.group_norm, torch.optim.Adam) on copied weights in the judge, in float64 and float32; backward
passes also against finite differences; then the invariants (col2im is im2col's adjoint, conv
is translation-equivariant, a block with a zeroed last γ is ReLU) and a small training run.
"""
