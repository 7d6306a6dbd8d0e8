"""The sandbox's untrusted side: the zygote and the workers it forks, which run tenant code.

Compiler, guards, module facades, the ``api`` stub, event data, the worker loop and the OS
isolation a worker applies to itself. Nothing here may import :mod:`runtime.sandbox.host` (or
anything else of the trusted process): ``make lint``'s import contract fails if it does.
"""
