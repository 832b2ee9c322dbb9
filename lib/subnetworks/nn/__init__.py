"""nn: encoder families, model loading, datasets and tokenisation, the masked training loop and evaluation."""
