"""Side-by-side benchmarks: ChatDfeHub against ChatOpenAI on the same server.

A user picks `langchain-dfehub` over pointing `ChatOpenAI` at the same
`base_url` only if it is at least as good, so every number here is a ratio
measured in one run, against the local emulator, never an absolute figure
compared across machines. `python -m benchmarks.run` (or `make bench`) runs it.
"""
