"""Image augmentation of both phases: the PIL chains of the file loader (transforms), the batched
chain on (B, 3, H, W) uint8 tensors that runs on the device (device, with crops, color and a
timm-equivalent randaugment), and the per-sample PIL chain with the same draws that the store's
CPU workers run (host). Builds on core only."""
