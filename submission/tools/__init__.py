"""Developer tools around the generator: the command line (`python -m submission`), `verify`,
`preview`, `bench`, `pack` and `rehearse`. Nothing here runs on the contest server: `pack` ships
the package without this folder, and nothing outside it imports from it."""
