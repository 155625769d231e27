"""FlowTransformer (Manocchio et al. 2023, arXiv:2304.14746) in torch: encodings, sequence
models, classification heads and the assembled classifier."""
