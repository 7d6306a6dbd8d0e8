"""What host and guest of the sandbox agree on: frames, the data in them, the OS layers.

Plain data and encoding only; both sides import it, it imports neither side.
"""
