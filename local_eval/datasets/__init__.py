"""The images a run reads: which files of a folder count (folders) and what they hold
(fingerprint), the generated ImageFolder and folder pairs (common), the kit's named downstream
sets (named_sets, cifar, image_sets), their parsing and identity (downstream), and two made
sets (noise, digits). Builds on core and augment."""
