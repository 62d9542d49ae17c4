"""The pre-decoded image store: an ImageFolder decoded once into one uint8 memory map.

layout.py: where a store lives, its files and how an existing one is checked and opened;
build.py: the parallel, resumable build; cli.py: `python -m local_eval store`;
loader.py: pre-training batches gathered from the memory map.
"""
