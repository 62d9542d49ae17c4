"""One local evaluation: pre-train on a generated ImageFolder, fine-tune, score."""
