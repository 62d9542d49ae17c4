"""The mix family: a dataset made of other recipes' images, by classes or blended (issue 29, lever 3)."""
