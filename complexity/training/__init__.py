"""Training on local text: `tokenizer` (byte-level BPE and routing statistics), `data` (memory-mapped token file,
packed sequences, the order of samples), `checkpoint` (atomic safetensors checkpoints), `train` (the loop) and
`cli` (the `complexity-train` and `complexity-train-tokenizer` commands). See docs/training.md."""
